import subprocess,sys,re,collections
exec(open('fold.py').read().split('PERIOD=')[0])
PERIOD=0.050; BIN=2e-3
for run,best in zip(sys.argv[1::2],sys.argv[2::2]):
    best=int(best)
    out=subprocess.run(['perf','script','-i',f'out/{run}.data','-F','comm,tid,time,ip,sym,dso'],capture_output=True,text=True).stdout
    rows=collections.defaultdict(collections.Counter)
    for line in out.splitlines():
        m=re.match(r'\s*(\S+)\s+(\d+)\s+([\d.]+):\s+\S+\s+(.*)$',line)
        if not m: continue
        comm=m.group(1)
        if comm not in ('gnhd','gnpsh','ledger-commit'): continue
        t=float(m.group(3)); rest=m.group(4)
        k='kernel' if '[kernel' in rest else cats(rest)
        ph=int(((t-best*1e-3)%PERIOD)/BIN)
        rows[k if comm!='ledger-commit' else 'LEDGER'][ph]+=1
    print(run)
    for k in sorted(rows,key=lambda k:-sum(rows[k].values())):
        print(f'  {k:15s}',' '.join(f'{rows[k][i]:3d}' for i in range(25)))
