"""Two SGD steps of a small pycls AnyNet under DistributedDataParallel with 2 processes
(gloo on the CPU), as pycls trains with NUM_GPUS 2: a safetensors fixture for regnet-train's
data-parallel test.

Each step has a fixed global batch of 8 images; rank r trains on images [4r, 4r + 4), with
its own BN batch statistics; DDP averages the gradients (allreduce mean) and every rank takes
the same SGD step. The loss is reduced as pycls's train_epoch does (scaled_all_reduce: the
mean of the ranks' mean losses). DDP's default broadcast_buffers=True copies rank 0's BN
running statistics to the other ranks before every forward pass, so rank 0's statistics are
the ones updated by rank 0's images only; they are what pycls checkpoints.

Model: res_stem_cifar (8 channels), res_bottleneck_block, depths [1, 1], widths [8, 16],
strides [1, 2], bot_mul 1, group widths [4, 8], SE ratio 0.25, 5 classes, 16x16 input.
pycls's initialisation, then BN made non-trivial (random gamma, beta, running statistics).
SGD as pycls builds it: lr 0.1, momentum 0.9, dampening 0, nesterov, weight decay 5e-4 on
every parameter; BN momentum 0.1, eps 1e-5; loss: mean cross-entropy.

Keys: the initial state dict (pycls names, no num_batches_tracked); per step s in
("", "step2."): `{s}input` [8,3,16,16], `{s}labels` (i64 [8]), `{s}logits` [8,5] (rank 0's
then rank 1's), `{s}loss` [1] (reduced as pycls), `{s}updated.<key>` (rank 0's whole state
after the step: weights and BN running statistics); `grad.<param>` the averaged gradients of
step 1.

Usage: target/bench-venv/bin/python tools/reference/ddp_reference.py \
    crates/regnet-train/tests/data/ddp_two_steps.safetensors
"""

import socket
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import save_file

from pycls.models.anynet import AnyNet

WORLD = 2
BATCH = 8
IM = 16
CLASSES = 5
ARGS = {
    "stem_type": "res_stem_cifar",
    "stem_w": 8,
    "block_type": "res_bottleneck_block",
    "ds": [1, 1],
    "ws": [8, 16],
    "ss": [1, 2],
    "bms": [1.0, 1.0],
    "gws": [4, 8],
    "se_r": 0.25,
    "nc": CLASSES,
}
SGD = {"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "nesterov": True, "weight_decay": 5e-4}


def initial_state():
    """pycls's initialisation with non-trivial BN parameters and running statistics."""
    torch.manual_seed(0)
    model = AnyNet(**ARGS)
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = 1.0 + 0.2 * torch.randn(c, generator=gen)
            m.bias.data = 0.1 * torch.randn(c, generator=gen)
            m.running_mean.data = 0.1 * torch.randn(c, generator=gen)
            m.running_var.data = 1.0 + 0.5 * torch.rand(c, generator=gen)
    return {k: v.clone() for k, v in model.state_dict().items()
            if not k.endswith("num_batches_tracked")}


def batches():
    gen = torch.Generator().manual_seed(2)
    return [(torch.randn(BATCH, 3, IM, IM, generator=gen),
             torch.randint(0, CLASSES, (BATCH,), generator=gen)) for _ in range(2)]


def state_of(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()
            if not k.endswith("num_batches_tracked")}


def worker(rank, port, init, data, out):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}",
                            rank=rank, world_size=WORLD)
    model = AnyNet(**ARGS)
    model.load_state_dict(init, strict=False)
    model = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), **SGD)
    loss_fun = torch.nn.CrossEntropyLoss()
    model.train()
    tensors = {}
    per = BATCH // WORLD
    for step, (x, y) in zip(["", "step2."], data):
        xr, yr = x[rank * per:(rank + 1) * per], y[rank * per:(rank + 1) * per]
        preds = model(xr)
        loss = loss_fun(preds, yr)
        opt.zero_grad()
        loss.backward()
        opt.step()
        # pycls's scaled_all_reduce of the loss; the logits of both ranks, in rank order.
        loss = loss.detach().clone()
        dist.all_reduce(loss)
        loss /= WORLD
        logits = [torch.empty_like(preds) for _ in range(WORLD)]
        dist.all_gather(logits, preds.detach().contiguous())
        if rank == 0:
            tensors[f"{step}input"] = x
            tensors[f"{step}labels"] = y.to(torch.int64)
            tensors[f"{step}logits"] = torch.cat(logits)
            tensors[f"{step}loss"] = loss.reshape(1)
            for k, v in state_of(model.module).items():
                tensors[f"{step}updated.{k}"] = v
            if step == "":
                for k, p in model.module.named_parameters():
                    tensors[f"grad.{k}"] = p.grad.detach().clone()
    if rank == 0:
        tensors.update(init)
        meta = {"torch": torch.__version__, "world_size": str(WORLD)}
        save_file({k: v.contiguous() for k, v in tensors.items()}, out, metadata=meta)
    dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    out = sys.argv[1]
    mp.spawn(worker, args=(free_port(), initial_state(), batches(), out), nprocs=WORLD)


if __name__ == "__main__":
    main()
