import os,re,sys,collections
mods=set()
for f in os.listdir('src'):
    if f.endswith('.rs') and f not in('lib.rs','main.rs'): mods.add(f[:-3])
    elif os.path.isdir('src/'+f): mods.add(f)
edges=collections.defaultdict(set)
for root,_,fs in os.walk('src'):
    for f in fs:
        if not f.endswith('.rs'): continue
        p=os.path.join(root,f); rel=p[4:]
        top=rel.split('/')[0].replace('.rs','')
        if top in('lib','main'): continue
        txt=open(p).read()
        # strip test modules roughly? keep
        for m in re.findall(r'crate::(\w+)',txt):
            if m in mods and m!=top: edges[top].add(m)
        # use crate::{a, b}
        for grp in re.findall(r'crate::\{([^}]*)\}',txt):
            for m in re.findall(r'(?:^|[,\s{])(\w+)',grp):
                if m in mods and m!=top: edges[top].add(m)
for k in sorted(mods): print(k,'->',' '.join(sorted(edges[k])))
# SCC
import itertools
idx={};low={};st=[];on=set();sccs=[];c=[0]
def sc(v):
    idx[v]=low[v]=c[0];c[0]+=1;st.append(v);on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w);low[v]=min(low[v],low[w])
        elif w in on: low[v]=min(low[v],idx[w])
    if low[v]==idx[v]:
        s=[]
        while True:
            w=st.pop();on.discard(w);s.append(w)
            if w==v:break
        sccs.append(s)
sys.setrecursionlimit(10000)
for v in sorted(mods):
    if v not in idx: sc(v)
for s in sccs:
    if len(s)>1: print('SCC',len(s),sorted(s))
