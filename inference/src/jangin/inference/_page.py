"""The review page: plain HTML, CSS and a little vanilla JavaScript, served by the app.

Nothing is loaded from elsewhere (no CDN, no web fonts); charts are inline SVG made by the server. The
page holds no inline script or style (its Content-Security-Policy forbids them): the script is
``/review/app.js`` and the styles ``/review/app.css``.

Sign-in: the form POSTs the key to ``/login`` (core), which sets an HttpOnly session cookie; the page's
script never sees the key, sends the cookie with every same-origin call, and adds ``X-Requested-With`` to
its writes. Signing out POSTs ``/logout``.

Keys: ``j`` / ``k`` next / previous, ``o`` reviewed OK, ``n`` reviewed NG, ``c`` comment, ``r`` reload.
"""

from __future__ import annotations

__all__ = ["LOGIN_HTML", "REVIEW_CSS", "REVIEW_HTML", "REVIEW_JS"]

REVIEW_CSS = """
body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#f6f6f4}
header{background:#234;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
header h1{font-size:18px;margin:0 12px 0 0}
header label{font-size:13px}
main{display:grid;grid-template-columns:minmax(420px,1fr) minmax(360px,1fr);gap:12px;padding:12px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px;overflow:auto}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:3px 6px;border-bottom:1px solid #eee;white-space:nowrap}
tr.sel{background:#ffe9a8}
tbody tr{cursor:pointer}
.NG{color:#b00;font-weight:bold}.DOUBTFUL{color:#b60;font-weight:bold}.OK{color:#070;font-weight:bold}
#view img{width:min(100%,480px);max-height:480px;object-fit:contain;display:block;margin:auto;image-rendering:pixelated;background:#333}
.keys{font-size:12px;color:#555}
kbd{border:1px solid #aaa;border-radius:3px;padding:0 4px;background:#fafafa}
#charts{display:flex;flex-wrap:wrap;gap:8px}#charts svg{max-width:100%;height:auto;display:block}
#msg{font-size:13px;min-height:1em}
button{font-size:14px;padding:4px 12px}
form.signin{max-width:360px;margin:80px auto;background:#fff;padding:20px;border:1px solid #ddd;border-radius:6px}
form.signin input{width:100%;font-size:15px;margin:8px 0}
.spacer{flex:1}
.wide{grid-column:1/3}
h3{margin:4px 0}
"""

LOGIN_HTML = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Jangin review — sign in</title>
<link rel="stylesheet" href="/review/app.css"></head><body>
<form class="signin" method="post" action="/login" autocomplete="off"><h2>Jangin review</h2><p><!--msg--></p>
<input type="hidden" name="next" value="/review">
<label>API key (engineer)<input type="password" name="api_key" id="api_key" required autofocus></label>
<button type="submit">Open the review queue</button></form>
</body></html>"""

REVIEW_HTML = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Jangin review</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="stylesheet" href="/review/app.css"></head><body>
<header><h1>Jangin — review</h1>
<label>station <input id="f-station" size="10" placeholder="all"></label>
<label><input type="checkbox" id="f-ng" checked> NG</label>
<label><input type="checkbox" id="f-doubtful" checked> DOUBTFUL</label>
<label><input type="checkbox" id="f-ok"> OK</label>
<label>show <select id="f-reviewed"><option value="">all</option><option value="false">not reviewed</option><option value="true">reviewed</option></select></label>
<button id="reload">Reload (r)</button>
<span id="precision"></span>
<span class="spacer"></span><button id="logout">Sign out</button></header>
<main>
<section><h3>Queue <span id="count"></span></h3>
<table id="queue"><thead><tr><th>time</th><th>station</th><th>verdict</th><th>score</th><th>findings</th><th>review</th></tr></thead><tbody></tbody></table></section>
<section id="view"><div id="detail">Select an inspection.</div><img id="img" alt=""><p>
<label>comment (<kbd>c</kbd>) <input id="comment" size="40" maxlength="2000"></label></p>
<p><button id="b-ok">OK (<kbd>o</kbd>)</button> <button id="b-ng">NG (<kbd>n</kbd>)</button></p>
<p class="keys"><kbd>j</kbd>/<kbd>k</kbd> next/previous · <kbd>o</kbd> OK · <kbd>n</kbd> NG · <kbd>c</kbd> comment · <kbd>Esc</kbd> leave the comment · <kbd>r</kbd> reload</p>
<div id="msg" role="status"></div></section>
<section class="wide"><h3>Control charts</h3><div id="charts"></div></section>
</main>
<script src="/review/app.js"></script></body></html>"""

REVIEW_JS = """(function(){
const $=id=>document.getElementById(id);
let rows=[],cur=-1,imgUrl=null,shown=null;
function api(path,opts){opts=opts||{};opts.credentials='same-origin';
  if(opts.method&&opts.method!=='GET')opts.headers=Object.assign({'X-Requested-With':'jangin-review'},opts.headers||{});
  return fetch(path,opts).then(r=>{if(r.status===401){location.replace('/review');throw new Error('signed out');}
  if(!r.ok)return r.json().then(b=>{throw new Error(b.detail||r.status)});return r;});}
function say(t){$('msg').textContent=t;}
function td(tr,text,cls){const c=document.createElement('td');c.textContent=text;if(cls)c.className=cls;tr.appendChild(c);}
function render(){const tb=document.querySelector('#queue tbody');tb.textContent='';
  rows.forEach((r,i)=>{const tr=document.createElement('tr');tr.dataset.id=r.inspection_id;if(i===cur)tr.className='sel';
    td(tr,(r.ts||'').replace('T',' ').slice(0,19));td(tr,r.station||'');td(tr,r.verdict,r.verdict);
    td(tr,r.score==null?'':r.score.toFixed(3));td(tr,(r.detections||[]).map(d=>d.name+' '+d.score.toFixed(2)).join(', '));
    td(tr,r.review_verdict||'',r.review_verdict||'');tr.onclick=()=>select(i);tb.appendChild(tr);});
  $('count').textContent='('+rows.length+')';}
function select(i){if(!rows.length)return;cur=Math.max(0,Math.min(rows.length-1,i));render();
  const r=rows[cur];const d=$('detail');d.textContent='';
  const h=document.createElement('div');h.innerHTML='<b></b> · <span></span> · model <span></span>';
  h.children[0].textContent=r.inspection_id;h.children[1].textContent=r.verdict;h.children[1].className=r.verdict;
  h.children[2].textContent=r.model+':'+r.model_version;d.appendChild(h);
  if(shown!==r.inspection_id){$('comment').value=r.review_comment||'';shown=r.inspection_id;}
  const isAnomaly=(r.scores||[]).some(s=>s.name==='anomaly');
  const url='/v1/inspections/'+r.inspection_id+(isAnomaly?'/anomaly.png':'/image?overlay=true');
  api(url).then(x=>x.blob()).then(b=>{if(imgUrl)URL.revokeObjectURL(imgUrl);imgUrl=URL.createObjectURL(b);$('img').src=imgUrl;$('img').alt=r.inspection_id;})
   .catch(e=>{$('img').removeAttribute('src');$('img').alt='no image: '+e.message;});
  const tr=document.querySelector('#queue tbody tr.sel');if(tr)tr.scrollIntoView({block:'nearest'});}
function load(){const p=new URLSearchParams();const v=[];
  if($('f-ng').checked)v.push('NG');if($('f-doubtful').checked)v.push('DOUBTFUL');if($('f-ok').checked)v.push('OK');
  if(v.length)p.set('verdict',v.join(','));if($('f-station').value)p.set('station',$('f-station').value);
  if($('f-reviewed').value)p.set('reviewed',$('f-reviewed').value);p.set('limit','300');
  return api('/v1/inspections?'+p).then(r=>r.json()).then(b=>{rows=b.inspections;cur=rows.length?Math.min(Math.max(cur,0),rows.length-1):-1;render();if(cur>=0)select(cur);else say('Nothing to review.');})
   .then(loadStats).catch(e=>say('error: '+e.message));}
function loadStats(){api('/v1/quality/precision').then(r=>r.json()).then(p=>{const f=x=>x==null?'–':(100*x).toFixed(0)+'%';
    $('precision').textContent='NG precision '+f(p.ng_precision)+' ('+p.ng_reviewed+' reviewed) · DOUBTFUL→NG '+f(p.doubtful_ng)+' · '+p.reviews+' reviews';});
  api('/v1/quality/charts?every=10').then(r=>r.json()).then(c=>{const el=$('charts');el.textContent='';
    Object.values(c.stations).forEach(st=>['p','xbar'].forEach(k=>{const div=document.createElement('div');div.innerHTML=st[k].svg;el.appendChild(div);}));
    if(!el.children.length)el.textContent='No inspections yet.';});}
function review(verdict){if(cur<0)return;const r=rows[cur];
  api('/v1/inspections/'+r.inspection_id+'/review',{method:'POST',headers:{'Content-Type':'application/json'},body:JSON.stringify({verdict:verdict,comment:$('comment').value||null})})
   .then(x=>x.json()).then(b=>{r.review_verdict=b.verdict;r.review_comment=b.comment;say('reviewed '+r.inspection_id+': '+b.verdict+(b.model_verdict==='DOUBTFUL'?' (resolves DOUBTFUL)':b.verdict!==b.model_verdict?' (override of '+b.model_verdict+')':' (confirmed)'));
     render();select(cur+1);loadStats();}).catch(e=>say('review failed: '+e.message));}
document.addEventListener('keydown',e=>{
  if(e.target.tagName==='INPUT'||e.target.tagName==='SELECT'){if(e.key==='Escape'||e.key==='Enter')e.target.blur();return;}
  if(e.ctrlKey||e.metaKey||e.altKey)return;
  const k=e.key;if(k==='j')select(cur+1);else if(k==='k')select(cur-1);else if(k==='o')review('OK');else if(k==='n')review('NG');
  else if(k==='c'){e.preventDefault();$('comment').focus();}else if(k==='r')load();else return;e.preventDefault();});
$('b-ok').onclick=()=>review('OK');$('b-ng').onclick=()=>review('NG');$('reload').onclick=load;
['f-ng','f-doubtful','f-ok','f-reviewed'].forEach(id=>$(id).onchange=load);$('f-station').onchange=load;
$('logout').onclick=()=>{fetch('/logout',{method:'POST',credentials:'same-origin'}).finally(()=>location.replace('/review'));};
load();
})();
"""
