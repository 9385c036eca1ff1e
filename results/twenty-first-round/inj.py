import sys,re,collections
PERIOD=0.05
blks=open(sys.argv[1]).read().split('\n\n')
best=int(sys.argv[2])
c=collections.Counter(); e=collections.Counter(); e2=collections.Counter()
for blk in blks:
    ls=blk.strip().split('\n')
    m=re.match(r'\s*(\S+)\s+(\d+)\s+([\d.]+):',ls[0]) if ls and ls[0] else None
    if not m: continue
    t=float(m.group(3)); ph=(int((t%PERIOD)/1e-3)-best)%50
    s='\n'.join(ls)
    if 'injected_block' in s: c[ph]+=1
    if re.search(r'nistz256|p256|ecp_nistz',s) and 'run_reader' in s: e[ph]+=1
    if 'commit_batch' in s: e2[ph]+=1
print('inject ',[c[i] for i in range(50)])
print('verify ',[e[i] for i in range(50)])
print('commit ',[e2[i] for i in range(50)])
