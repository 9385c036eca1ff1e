# Live heap bytes over time from a heaptrack file, grouped by component (default) or, with
# `--by-site`, by the innermost gossip_engine or redb frame (sites that moved by 16 KiB or more).
# Usage: python3 heaptrack_live.py FILE.zst [--by-site]
import sys,subprocess,collections,re
BY_SITE='--by-site' in sys.argv
f=subprocess.Popen(['zstdcat',sys.argv[1]],stdout=subprocess.PIPE,text=True).stdout
strings=['']; ips=[None]; traces=[(0,0)]; ainfo=[]
KEYS=['redb','h2::','hyper','rustls','tonic','gossip_core::ingress::seen','gossip_core::ingress::verified','gossip_core::components','gossip_engine::commit','gossip_engine::conn','gossip_engine','gossip_core','gossip_node','tokio','tracing']
cls_cache={}
def classify(tr):
    if tr in cls_cache: return cls_cache[tr]
    names=[]; t=tr
    while t:
        ip,par=traces[t]; x=ips[ip]
        if x and x[0]: names.append(strings[x[0]])
        t=par
    c='other'
    for n in names:
        if BY_SITE:
            if 'gossip_engine' in n or 'redb' in n:
                c=re.sub(r'::h[0-9a-f]{16}$','',n)[:70]; break
            continue
        for k in KEYS:
            if k in n: c=k; break
        if c!='other': break
    cls_cache[tr]=c; return c
live=collections.Counter(); t=0; out=[]; nextp=0
for line in f:
    k=line[0]
    if k=='+':
        sz,tr=ainfo[int(line[2:],16)]; live[classify(tr)]+=sz
    elif k=='-':
        sz,tr=ainfo[int(line[2:],16)]; live[classify(tr)]-=sz
    elif k=='c':
        t=int(line[2:],16)
        if t>=nextp: out.append((t,dict(live))); nextp=t+20000
    elif k=='s': strings.append(line[2:].split(' ',1)[1].rstrip('\n') if ' ' in line[2:].strip() else '')
    elif k=='i':
        p=line.split(); ips.append((int(p[3],16) if len(p)>3 else 0,))
    elif k=='t':
        p=line.split(); traces.append((int(p[1],16),int(p[2],16)))
    elif k=='a':
        p=line.split(); ainfo.append((int(p[1],16),int(p[2],16)))
cols=sorted({c for _,d in out for c in d}, key=lambda c:-max(d.get(c,0) for _,d in out))
if BY_SITE:
    # KiB at 20, 100, 200, 300, 400 s and at the end.
    for c in cols:
        v=[d.get(c,0)//1024 for _,d in out]
        if max(v)-min(v[1:] or [0])>=16: print(c, v[1], v[5], v[10], v[15], v[20], v[-2])
else:
    print('t_s '+' '.join(c.split('::')[-1][:10] for c in cols))
    for t,d in out: print('%d '%(t/1000)+' '.join('%d'%(d.get(c,0)//1024) for c in cols))
