import sys,re,collections
PERIOD=0.05
lines=open(sys.argv[1]).read().split('\n\n')
samples=[]
for blk in lines:
    ls=blk.strip().split('\n')
    if not ls or not ls[0].strip(): continue
    m=re.match(r'\s*(\S+)\s+(\d+)\s+([\d.]+):',ls[0])
    if not m: continue
    comm=m.group(1)
    if comm not in ('gnhd','ledger-commit'): continue
    frames=[re.sub(r'^\s*[0-9a-f]+\s+','',l).strip() for l in ls[1:]]
    samples.append((float(m.group(3)),comm,frames))
h=collections.Counter(int((t%PERIOD)/1e-3) for t,_,_ in samples)
best=max(range(50),key=lambda s:sum(h[(s+i)%50] for i in range(10)))
print('n',len(samples),'best',best,[h[(best+i)%50] for i in range(50)])
lo,hi=int(sys.argv[2]),int(sys.argv[3])  # ms window relative to wave start
sel=[f for t,c,f in samples if lo <= ((int((t%PERIOD)/1e-3)-best)%50) < hi]
print('selected',len(sel))
# ECDSA samples: find the first gossip frame
c=collections.Counter()
for f in sel:
    if not any(re.search(r'nistz256|p256|ecp_nistz|ring::ec',x) for x in f[:6]): continue
    g=[x for x in f if 'gossip' in x]
    c[' <- '.join(re.sub(r'\+0x[0-9a-f]+','',x)[:80] for x in g[:3])]+=1
for k,v in c.most_common(15): print(v,k)
print('---- full gossip frames, ECDSA in window')
c2=collections.Counter()
for f in sel:
    if not any(re.search(r'nistz256|p256|ecp_nistz|ring::ec',x) for x in f[:6]): continue
    g=[re.sub(r'\+0x[0-9a-f]+','',x)[:110] for x in f if re.search('gossip|tokio::runtime::task',x)]
    c2['\n    '.join(g[:8])]+=1
for k,v in c2.most_common(4): print(v,k)
print('---- non-ECDSA in window: top gossip frames')
c3=collections.Counter()
for f in sel:
    g=[re.sub(r'\+0x[0-9a-f]+','',x)[:100] for x in f if 'gossip' in x]
    c3[g[0] if g else (f[0][:80] if f else '?')]+=1
for k,v in c3.most_common(25): print(v,k)
