import subprocess,sys,re,collections
sys.path.insert(0,'/work/main/results/nineteenth-round/p50-verify')
def cats(s):
    if '[k]' in s or 'kernel' in s: return 'kernel'
    rules=[('ecdsa',r'nistz256|p256|ecp_|ord_sqr|ord_mul|bn_|LIMBS|ring::ec'),('sha256',r'sha256|sha512|digest'),('aes-gcm/tls',r'aes|gcm|ghash|rustls|chacha'),
           ('alloc',r'mi_|malloc|free|memset|memcpy|memmove|realloc'),('h2/hyper/tonic',r'h2::|hyper|tonic|http_body|http::'),('tokio',r'tokio|mio::|epoll'),
           ('prost/decode',r'prost|decode|encode|Message'),('redb',r'redb'),('gossip',r'gossip'),('libc/time',r'clock_gettime|pthread|syscall|__GI|libc')]
    for n,r in rules:
        if re.search(r,s): return n
    return 'other'
PERIOD=0.050; BIN=1e-3
for run in sys.argv[1:]:
    out=subprocess.run(['perf','script','-i',f'out/{run}.data','-F','comm,tid,time,ip,sym,dso'],capture_output=True,text=True).stdout
    samples=[]
    for line in out.splitlines():
        m=re.match(r'\s*(\S+)\s+(\d+)\s+([\d.]+):\s+\S+\s+(.*)$',line)
        if not m: continue
        comm=m.group(1)
        if comm not in ('gnhd','gnpsh','ledger-commit'): continue
        t=float(m.group(3)); rest=m.group(4)
        k='kernel' if '[kernel' in rest else cats(rest)
        samples.append((t,comm,k,rest))
    h=collections.Counter(int((t%PERIOD)/BIN) for t,_,_,_ in samples)
    nb=int(PERIOD/BIN)
    # wave window: 10 ms with the most samples (circular)
    W=10
    best=max(range(nb),key=lambda s:sum(h[(s+i)%nb] for i in range(W)))
    inw=lambda t: ((int((t%PERIOD)/BIN)-best)%nb)<W
    print(run,'samples',len(samples),'wave start bin',best)
    print(' phase hist (1ms bins from wave start):',[h[(best+i)%nb] for i in range(nb)])
    for lab,sel in (('wave',True),('rest',False)):
        c=collections.Counter(k for t,comm,k,_ in samples if inw(t)==sel)
        cc=collections.Counter(comm for t,comm,k,_ in samples if inw(t)==sel)
        print(' ',lab,sum(c.values()),dict(cc),' '.join(f'{k}={v}' for k,v in c.most_common()))
    if len(sys.argv)>1:
        c=collections.Counter(re.sub(r'\s*\(.*\)$','',r)[-90:] for t,comm,k,r in samples if inw(t))
        with open(f'out/{run}.wavesyms','w') as f:
            for s,n in c.most_common(200): f.write(f'{n:6d} {s}\n')
