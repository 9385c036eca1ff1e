import subprocess,sys,re,collections
def cats(sym,dso):
    s=sym
    if '[k]' in s: return 'kernel'
    rules=[('ecdsa',r'nistz256|p256|ecp_|ord_sqr|ord_mul|bn_|LIMBS|ring::ec'),('sha256',r'sha256|sha512|digest'),('aes-gcm/tls',r'aes|gcm|ghash|rustls|chacha'),
           ('alloc',r'mi_|malloc|free|memset|memcpy|memmove|realloc'),('h2/hyper/tonic',r'h2::|hyper|tonic|http_body|http::'),('tokio',r'tokio|mio::|epoll'),
           ('prost/decode',r'prost|decode|encode|Message'),('redb',r'redb'),('gossip',r'gossip'),('libc/time',r'clock_gettime|pthread|syscall|__GI|libc')]
    for n,r in rules:
        if re.search(r,s): return n
    return 'other'
for run in sys.argv[1:]:
    out=subprocess.run(['perf','report','-i',run+'.data','--no-children','--comm','gnpsh,gnon,ledger-commit','--sort','sym','-q','-g','none','-n','--stdio'],capture_output=True,text=True).stdout
    c=collections.Counter(); tot=0
    for line in out.splitlines():
        m=re.match(r'\s*([\d.]+)%\s+(\d+)\s+(.*)$',line)
        if not m: continue
        n=int(m.group(2)); tot+=n; c[cats(m.group(3),'')]+=n
    print(run, 'total', tot, ' '.join(f'{k}={v}' for k,v in c.most_common()))
