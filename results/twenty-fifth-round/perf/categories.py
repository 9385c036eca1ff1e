# categories.py DATA COMM[,COMM...] : perf samples of the named processes grouped by symbol category
# (the nineteenth round's cat.py rules, plus ledger/alloc names); run where `perf report` can read DATA.
import collections, re, subprocess, sys

RULES = [('ecdsa', r'nistz256|p256|ecp_|ord_sqr|ord_mul|bn_|LIMBS|ring::ec|limbs'),
         ('sha256', r'sha256|sha512|digest'), ('aes-gcm/tls', r'aes|gcm|ghash|rustls|chacha'),
         ('alloc', r'mi_|malloc|free|memset|memcpy|memmove|realloc|alloc::'),
         ('h2/hyper/tonic', r'h2::|hyper|tonic|http_body|http::'), ('tokio', r'tokio|mio::|epoll'),
         ('prost/decode', r'prost|decode|encode|Message'), ('redb', r'redb'), ('gossip', r'gossip'),
         ('libc/time', r'clock_gettime|pthread|syscall|__GI|libc|vdso')]

def category(sym):
    if '[k]' in sym:
        return 'kernel'
    for name, rule in RULES:
        if re.search(rule, sym):
            return name
    return 'other'

data, comms = sys.argv[1], sys.argv[2]
out = subprocess.run(['perf', 'report', '-i', data, '--no-children', '--comm', comms, '--sort', 'dso,sym',
                      '-q', '-n', '--stdio', '-g', 'none'], capture_output=True, text=True).stdout
counts, total = collections.Counter(), 0
for line in out.splitlines():
    m = re.match(r'\s*([\d.]+)%\s+(\d+)\s+(.*)$', line)
    if m:
        n = int(m.group(2)); total += n; counts[category(m.group(3))] += n
print(data, comms, 'total', total, ' '.join(f'{k}={v}' for k, v in sorted(counts.items())))
