import { chromium } from 'playwright-core';
const [file, out, y = '0', h = '900'] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
await page.goto('file://' + file);
await page.screenshot({ path: out, fullPage: true, clip: { x: 0, y: Number(y), width: 1400, height: Number(h) } });
await browser.close();
