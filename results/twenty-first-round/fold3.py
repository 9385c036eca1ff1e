import subprocess,sys,re,collections
PERIOD=0.050; BIN=2e-3
for run,best in zip(sys.argv[1::2],sys.argv[2::2]):
    best=int(best)
    out=subprocess.run(['perf','script','-i',f'out/{run}.data','-F','comm,tid,time'],capture_output=True,text=True).stdout
    rows=collections.defaultdict(collections.Counter)
    for line in out.splitlines():
        m=re.match(r'\s*(\S+)\s+(\d+)\s+([\d.]+):',line)
        if not m: continue
        comm=m.group(1); t=float(m.group(3))
        if comm=='swapper': continue
        if re.match(r'sub-\d+|inject|lg',comm): comm='loadgen'
        elif comm not in ('gnhd','gnpsh','ledger-commit'): comm='other'
        rows[comm][int(((t-best*1e-3)%PERIOD)/BIN)]+=1
    print(run)
    for k in sorted(rows,key=lambda k:-sum(rows[k].values())):
        print(f'  {k:15s}',sum(rows[k].values()),' '.join(f'{rows[k][i]:3d}' for i in range(25)))
