// Drives the system's Chromium (puppeteer-core over the DevTools protocol)
// through Ferry's dashboard as a person would: waits for the live update,
// reads the tiles, charts and tables, saves a screenshot, then searches the
// cache browser for an object and clicks its Purge button.
//
// node dashboard.mjs CHROMIUM DASHBOARD_URL SCREENSHOT_PATH PURGE_URL
// Prints one JSON object with what it saw.
import puppeteer from 'puppeteer-core';

const [chromium, dashboard, screenshot, purgeUrl] = process.argv.slice(2);
const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-proxy-server',
         '--no-first-run', '--disable-background-networking', '--disable-component-update'],
});
const result = {};
try {
  const page = await browser.newPage();
  await page.setViewport({width: 1280, height: 1400});
  await page.goto(dashboard, {waitUntil: 'load'});
  // The script stamps the body after each refresh from /api/stats.
  await page.waitForFunction(() => document.body.dataset.refreshed, {timeout: 15000});
  Object.assign(result, await page.evaluate(() => {
    const text = id => (document.getElementById(id) || {}).textContent;
    const tiles = {};
    for (const el of document.querySelectorAll('[id^="tile-"]')) tiles[el.id.slice(5)] = el.textContent;
    const charts = {};
    for (const box of document.querySelectorAll('[data-chart]')) {
      const shapes = [...box.querySelectorAll('.series')];
      // A series is drawn (not flat on the axis) when its points differ.
      const drawn = shapes.filter(s => new Set(s.getAttribute('points').trim().split(' ')
        .map(p => p.split(',')[1])).size > 1).map(s => s.dataset.series);
      charts[box.dataset.chart] = {series: shapes.length, drawn};
    }
    const rows = id => [...document.querySelectorAll('#' + id + ' tr')].map(tr =>
      [...tr.children].map(td => td.textContent));
    return {tiles, charts, recent: rows('recent'), top_requests: rows('top-requests'),
            top_blocked: rows('top-blocked'), largest: rows('largest'), most_hit: rows('most-hit'),
            rules: text('rules'), uptime: text('uptime')};
  }));
  await page.screenshot({path: screenshot});

  await page.goto(dashboard.replace(/\/$/, '') + '/cache?q=' + encodeURIComponent(purgeUrl), {waitUntil: 'load'});
  result.search_rows = await page.$$eval('#results tr', trs => trs.map(tr => tr.children[0].textContent));
  if (!result.search_rows.length) throw new Error('no search result for ' + purgeUrl);
  await Promise.all([page.waitForNavigation({waitUntil: 'load'}), page.click('#results tr button.purge')]);
  result.after_purge = {url: page.url(), message: await page.$eval('#message', el => el.textContent),
                        rows: await page.$$eval('#results tr', trs => trs.length)};
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
