"""Two steps of torch.optim.Adam and torch.optim.AdamW on fixed parameters and gradients,
with pycls's weight-decay groups, as a JSON fixture for regnet-train's Adam test.

pycls's construct_optimizer puts BN parameters, biases and the other parameters in separate
groups, each with its own weight decay, and builds Adam/AdamW with betas
(OPTIM.BETA1, OPTIM.BETA2) and PyTorch's default eps (1e-8). The learning rate is changed
between the steps as pycls's set_lr does at an epoch boundary.

Usage: target/bench-venv/bin/python tools/reference/adam_reference.py \
    > crates/regnet-train/tests/data/adam_reference.json
"""

import json

import torch

BETAS = (0.8, 0.99)
EPS = 1e-8
LRS = [0.01, 0.005]
# name -> (role, shape, weight decay): the three pycls groups with different decays.
PARAMS = {
    "s1.b1.f.a.weight": ("weight", (2, 3), 0.1),
    "s1.b1.f.a_bn.weight": ("bn_weight", (3,), 0.02),
    "head.fc.bias": ("bias", (2,), 0.0),
}


def tolist(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def run(kind, init, grads):
    params = {n: torch.tensor(v, dtype=torch.float32).reshape(PARAMS[n][1]).requires_grad_()
              for n, v in init.items()}
    groups = [{"params": [params[n]], "weight_decay": wd} for n, (_, _, wd) in PARAMS.items()]
    cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
    opt = cls(groups, lr=LRS[0], betas=BETAS, eps=EPS, foreach=False)
    steps = []
    for step, lr in enumerate(LRS):
        for g in opt.param_groups:
            g["lr"] = lr
        for n, p in params.items():
            p.grad = torch.tensor(grads[step][n], dtype=torch.float32).reshape(p.shape)
        opt.step()
        steps.append({
            "params": {n: tolist(p) for n, p in params.items()},
            "exp_avg": {n: tolist(opt.state[p]["exp_avg"]) for n, p in params.items()},
            "exp_avg_sq": {n: tolist(opt.state[p]["exp_avg_sq"]) for n, p in params.items()},
        })
    return steps


def main():
    gen = torch.Generator().manual_seed(0)
    init = {n: tolist(torch.randn(s, generator=gen)) for n, (_, s, _) in PARAMS.items()}
    grads = [{n: tolist(0.1 * torch.randn(s, generator=gen)) for n, (_, s, _) in PARAMS.items()}
             for _ in LRS]
    out = {
        "torch": torch.__version__,
        "beta1": BETAS[0],
        "beta2": BETAS[1],
        "eps": EPS,
        "lrs": LRS,
        "params": {n: {"role": r, "shape": list(s), "weight_decay": wd}
                   for n, (r, s, wd) in PARAMS.items()},
        "init": init,
        "grads": grads,
        "adam": run("adam", init, grads),
        "adamw": run("adamw", init, grads),
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
