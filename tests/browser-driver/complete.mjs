// Opens a page in the system's Chromium (puppeteer-core) and reports what
// rendered: computed colours, every image's natural size, the web font's
// status, the iframe's content, what the page's script did, and every
// request the page made. Used by tests/complete_pages.rs on the live page
// (through the proxy) and on the saved file (no proxy, origin stopped).
//
// node complete.mjs inspect CHROMIUM URL SCREENSHOT [PROXY]
// node complete.mjs compare CHROMIUM A.png B.png   (counts differing pixels)
// Prints one JSON object.
import puppeteer from 'puppeteer-core';

const [mode, chromium, ...rest] = process.argv.slice(2);
const args = ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
              '--disable-background-networking', '--disable-component-update',
              '--allow-file-access-from-files', '--font-render-hinting=none'];
if (mode === 'inspect' && rest[2]) {
  args.push(`--proxy-server=http://${rest[2]}`, '--proxy-bypass-list=<-loopback>');
} else {
  args.push('--no-proxy-server');
}
const browser = await puppeteer.launch({executablePath: chromium, headless: true, args});
const result = {};
try {
  const page = await browser.newPage();
  await page.setViewport({width: 800, height: 600});
  if (mode === 'compare') {
    const fs = await import('node:fs');
    const [a, b] = rest.map(p => 'data:image/png;base64,' + fs.readFileSync(p).toString('base64'));
    Object.assign(result, await page.evaluate(async (a, b) => {
      const load = src => new Promise((ok, err) => {
        const i = new Image(); i.onload = () => ok(i); i.onerror = err; i.src = src; });
      const [ia, ib] = [await load(a), await load(b)];
      const pixels = img => {
        const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
        const x = c.getContext('2d'); x.drawImage(img, 0, 0);
        return x.getImageData(0, 0, img.width, img.height).data;
      };
      if (ia.width !== ib.width || ia.height !== ib.height) return {size_differs: true};
      const [pa, pb] = [pixels(ia), pixels(ib)];
      let differing = 0;
      for (let i = 0; i < pa.length; i += 4) {
        if (pa[i] !== pb[i] || pa[i + 1] !== pb[i + 1] || pa[i + 2] !== pb[i + 2]) differing++;
      }
      return {differing, total: pa.length / 4};
    }, a, b));
  } else {
    const [url, screenshot] = rest;
    result.requests = [];
    result.failed = [];
    page.on('request', r => result.requests.push(r.url().slice(0, 120)));
    page.on('requestfailed', r => result.failed.push(r.url().slice(0, 120)));
    await page.goto(url, {waitUntil: 'load', timeout: 20000});
    await page.evaluate(() => document.fonts.ready);
    Object.assign(result, await page.evaluate(() => {
      const color = id => { const e = document.getElementById(id); return e && getComputedStyle(e).color; };
      const images = [...document.images].map(i => ({id: i.id, w: i.naturalWidth, h: i.naturalHeight,
                                                    complete: i.complete}));
      const frame = document.querySelector('iframe');
      const fdoc = frame && frame.contentDocument;
      const fimg = fdoc && fdoc.getElementById('frame-img');
      const bg = document.getElementById('bg');
      const bg2 = document.getElementById('bg2');
      const sample = document.getElementById('font-sample');
      return {
        imported: color('imported'), main: color('main'), images,
        font_check: document.fonts.check('20px FerryTest'),
        font_faces: [...document.fonts].map(f => f.family + ':' + f.status),
        font_sample_width: sample && sample.getBoundingClientRect().width,
        frame_text: fdoc && fdoc.getElementById('frame-text') && fdoc.getElementById('frame-text').textContent,
        frame_color: fdoc && fdoc.getElementById('frame-text') && getComputedStyle(fdoc.getElementById('frame-text')).color,
        frame_img: fimg ? {w: fimg.naturalWidth, h: fimg.naturalHeight} : null,
        js_target: document.getElementById('js-target') && document.getElementById('js-target').textContent,
        bg: bg && getComputedStyle(bg).backgroundImage.slice(0, 40),
        bg2: bg2 && getComputedStyle(bg2).backgroundImage.slice(0, 40),
        scripts: document.scripts.length,
      };
    }));
    await page.screenshot({path: screenshot});
  }
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
