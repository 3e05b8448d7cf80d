import { describe, expect, it } from 'vitest';
import { escapeHtml, html, notice, page } from './layout.js';

describe('page layout', () => {
  it('escapes every interpolation, and only html`` passes through unescaped', () => {
    const evil = `<img src=x onerror="alert('1')">&\``;
    expect(html`<p>${evil}</p>`.value).toBe('<p>&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;&#96;</p>');
    expect(html`<input value="${'" autofocus onfocus="x'}">`.value).toBe('<input value="&quot; autofocus onfocus=&quot;x">');
    expect(html`<ul>${['a<', 'b'].map((x) => html`<li>${x}</li>`)}</ul>`.value).toBe('<ul><li>a&lt;</li><li>b</li></ul>');
    expect(html`${null}${undefined}${false}${0}`.value).toBe('0');
    // A plain string that looks like markup is still text.
    expect(html`${'<b>x</b>'}`.value).toBe('&lt;b&gt;x&lt;/b&gt;');
    expect(escapeHtml('a&b')).toBe('a&amp;b');
  });

  it('builds a whole document linking the stylesheet, with no inline script or style', () => {
    const doc = page('Title <x>', html`<p>${'body & soul'}</p>${notice('error', 'bad <thing>')}`);
    expect(doc.startsWith('<!doctype html>')).toBe(true);
    expect(doc).toContain('<title>Title &lt;x&gt; · Floodgate</title>');
    expect(doc).toContain('<h1>Title &lt;x&gt;</h1>');
    expect(doc).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
    expect(doc).toContain('<link rel="stylesheet" href="/assets/app.css">');
    expect(doc).toContain('<p class="notice error" role="alert">bad &lt;thing&gt;</p>');
    expect(doc).not.toMatch(/<script|<style|\sstyle=/);
  });
});
