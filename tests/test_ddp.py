"""DDP inside one job, on CPU with gloo and 2 processes, against one process with the same global batch.

In float32 the two runs cannot be compared weight by weight: at initialisation this network's
gradients carry ~0.4 % float32 rounding noise (measured against float64), and RMSprop's first
steps (≈ lr·sign(g)) amplify any difference. The exact check therefore runs the real data path
(`make_batch`, shards) and the real `train_step` in float64, where DDP must agree with one process
to rounding; the end-to-end check runs `hgbench train` with `train.devices: 2` through torchrun.
"""

import dataclasses
import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from hgbench.data.dataset import Augmentation, CropDataset, epoch_batches, step_generator
from hgbench.distributed import Context, shard, sync_batchnorm
from hgbench.recipe import make_batch, make_model, make_optimizer, supervised_outputs, train_step
from test_resume import CFG, DATASET, VARIANT, cli_train, run_train, smoke_data, write_params  # noqa: F401

STEPS = 3


def test_shards_cover_the_global_batch_once():
    rows = np.arange(10, 17)
    parts = [rows[shard(rows, Context(rank=r, world=3))] for r in range(3)]
    assert [len(p) for p in parts] == [2, 3, 2]
    assert np.concatenate(parts).tolist() == rows.tolist()


def run_steps(ctx: Context, data_dir) -> tuple[list[float], torch.Tensor]:
    """STEPS real training steps in float64; returns the losses and the final outputs on fixed inputs."""
    torch.manual_seed(0)
    net = make_model(VARIANT, 16, torch.device("cpu")).double()
    model = net
    if ctx.world > 1:
        net = sync_batchnorm(net, torch.device("cpu"))
        model = torch.nn.parallel.DistributedDataParallel(net)
    optimizer = make_optimizer(CFG, net)
    data = CropDataset(data_dir / "train.h5")
    aug = Augmentation(CFG.rotation, CFG.scale, CFG.flip, color_jitter=0.2)
    losses = []
    for it, rows in enumerate(epoch_batches(len(data), CFG.batch_size, 0, 0)[:STEPS]):
        part = shard(rows, ctx)
        crops, joints, missing = data.batch(rows[part])
        images, targets = make_batch(
            crops,
            joints,
            missing,
            aug=aug,
            generator=step_generator(0, it),
            flip_perm=torch.as_tensor(data.flip_permutation),
            input_res=DATASET.input_res,
            output_res=DATASET.output_res,
            sigma=1.0,
            device=torch.device("cpu"),
            part=part,
            global_batch=len(rows),
        )
        per_output = train_step(
            model,
            optimizer,
            images.double(),
            targets.double(),
            supervised_outputs(VARIANT, net.config),
            "fp32",
            ctx.world,
        )
        losses.append(float(per_output.sum()))
    crops, _, _ = data.batch(np.arange(4))
    with torch.no_grad():
        net.eval()
        out = net(crops.permute(0, 3, 1, 2).double()[:, :, :64, :64] / 255)
    return losses, out


def _worker(rank: int, port: int, data_dir, result_file):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        result = run_steps(Context(rank=rank, world=2), data_dir)
        if rank == 0:
            torch.save(result, result_file)
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_ranks_compute_the_single_process_steps_in_float64(smoke_data, tmp_path):
    torch.set_num_threads(1)
    losses, out = run_steps(Context(), smoke_data)
    mp.spawn(_worker, args=(free_port(), smoke_data, tmp_path / "ddp.pt"), nprocs=2)
    ddp_losses, ddp_out = torch.load(tmp_path / "ddp.pt", weights_only=True)
    assert len(losses) == STEPS and losses[-1] < losses[0]
    assert ddp_losses == pytest.approx(losses, rel=1e-9)
    torch.testing.assert_close(ddp_out, out, rtol=1e-7, atol=1e-9)


@pytest.mark.slow
def test_hgbench_train_with_two_devices_runs_torchrun_gloo_workers(smoke_data, tmp_path):
    # float32 end to end: the launcher, rank 0 writing, and a training curve like one process's.
    params = write_params(tmp_path, epochs=2, checkpoint_every=0, devices=2)
    proc = cli_train(params, smoke_data, tmp_path / "ddp")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("model written to") == 1
    single = run_train(smoke_data, tmp_path / "single", dataclasses.replace(CFG, epochs=2, checkpoint_every=0))
    rows = [(tmp_path / d / "log.csv").read_text().splitlines() for d in ("ddp", "single")]
    assert rows[0][0] == rows[1][0] and len(rows[0]) == 3
    loss = [[float(r.split(",")[3]) for r in log[1:]] for log in rows]
    assert loss[0] == pytest.approx(loss[1], rel=0.05)
    assert single.exists() and (tmp_path / "ddp" / "model.pt").exists()


def test_two_devices_with_a_missing_split_is_refused_once_before_any_worker_starts(tmp_path):
    params = write_params(tmp_path, epochs=2, checkpoint_every=0, devices=2)
    proc = cli_train(params, tmp_path / "no-data", tmp_path / "ddp")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hgbench train: error:") and "train.h5" in lines[0], lines
    assert not (tmp_path / "ddp").exists()


def test_the_launcher_reports_the_failing_rank_s_status_not_the_ranks_it_stopped(monkeypatch):
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure
    from torch.distributed.launcher import api

    from hgbench import distributed

    def failing(codes):
        def launch(config, entrypoint):
            def run(*args):
                failures = {
                    rank: ProcessFailure(local_rank=rank, pid=100 + rank, exitcode=code, error_file="")
                    for rank, code in enumerate(codes)
                }
                raise ChildFailedError("hgbench", failures)

            return run

        return launch

    for codes, expected in (([2, 75], 2), ([2, -15], 2), ([75, 75], 75), ([2, 3], 1), ([2], 2)):
        monkeypatch.setattr(api, "elastic_launch", failing(codes))
        assert distributed.launch(2, ["train"], interrupted=75) == expected, codes
