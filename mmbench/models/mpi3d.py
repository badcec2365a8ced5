"""The MPI3D-Complex experiment of the misalignment paper (Cai et al. 2025, §5.2, App. E).

For every selection and perturbation setting of Table 7, train an image encoder and a text encoder
with the paper's contrastive loss, freeze them, fit a logistic-regression and a 2-layer MLP
classifier per image factor on the ``val`` split's embeddings and score the multiclass Matthews
correlation (MCC) on ``test``, from both modalities. The theory predicts MCC ≈ 1 for the factors
the captions mention without misreporting them, and ≈ 0 for the omitted and misreported ones.

``full`` is the paper's run (GPU): ResNet-18 (fc 100) → LeakyReLU → Linear image encoder on the
64×64 photographs, the variable-depth one-hot 2-D CNN text encoder, NT-Xent with cosine similarity
and τ = 1 (the reference code's loss: intra-modal negatives, symmetric), Adam lr 1e-5, batch 256,
gradient clipping at 2, 200,000 steps, encoding size max(3, #unbiased factors), probes fitted on
all 23,040 ``val`` rows and scored on the 23,040 ``test`` rows, 3 seeds. The captions are the
reference code's (its phrases, and misreported values drawn from all K values: the data the
paper's figures were measured on).

``quick`` (CPU, minutes) runs the same pipeline on a *procedural fake* archive
(:func:`mmbench.testing.write_fake_mpi3d`, 32×32 images, 3·2·2·3·3·10·10 = 10,800 of them) with a
small conv image encoder, τ = 0.1 and unit-norm outputs, lr 1e-3 with warm-up and cosine decay,
2,500 steps and one seed (:data:`QUICK_NOTE` says why): it checks the pattern (what is
recovered, what is excluded), not the photographs' numbers. With ``data_dir`` it runs on the
user's archive instead.

Example:
    >>> result = mmbench.models.reproduce.reproduce("misalign-mpi3d", scale="quick")
    >>> print(result.to_markdown())
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mmbench.models.encoders import channel_stats
from mmbench.models.reproduce import Check, EvalSpec, RunSpec, TableSpec
from mmbench.models.train import ContrastiveModel, TrainConfig, resolve_device

__all__ = ["MPI3DContrastiveModel", "embed_split", "run", "table", "train_mpi3d"]

logger = logging.getLogger(__name__)

IMAGE, TEXT = "image", "tokens"
FACTORS = ("color", "shape", "size", "camera", "background", "horizontal", "vertical")
SETTINGS = (*(f"selection-{k}" for k in range(1, 6)), *(f"perturbation-{k}" for k in range(2, 6)))
#: the fake archive of the quick scale: color 3, shape 2 (of 4 each), size, camera, background at their real
#: sizes (2, 3, 3), arm position 10 × 10 (of 40 × 40): 10,800 images
QUICK_FACTOR_SIZES = (3, 2, 2, 3, 3, 10, 10)
QUICK_IMAGE_SIZE = 32
#: what both scales change in the named configs: the reference code's captions
REFERENCE_DATA = {"wording": "reference", "replacement": "any"}
PROBES = (("linear", "logistic"), ("non-lin.", "mlp"))
MODALITY_LABEL = {IMAGE: "ẑx", TEXT: "ẑt"}


@dataclasses.dataclass(frozen=True)
class _Scale:
    image_encoder: str
    steps: int
    lr: float
    lr_schedule: str
    warmup_steps: int
    seeds: tuple[int, ...]
    fake: bool
    tau: float = 1.0
    norm: str | None = None  # encoders' output normalisation (None: raw, as the reference code)
    batch_size: int = 256
    text_fbase: int = 25  # the text CNN's base width f (the reference: 25)


_SCALES = {
    "full": _Scale("resnet18", 200_000, 1e-5, "constant", 0, (0, 1, 2), fake=False),
    "quick": _Scale("conv-small", 2500, 1e-3, "cosine", 100, (0,), fake=True, tau=0.1, norm="sphere-fixed",
                    text_fbase=8),
}
QUICK_NOTE = (
    "Quick scale (stated deviations, to fit 2 CPU cores): a procedural fake archive (mmbench.testing.write_fake_mpi3d, "
    "32×32, factor sizes 3·2·2·3·3·10·10 = 10,800 images; every factor changes a simple drawing, plus pixel noise) "
    "instead of the photographs; a small conv image encoder instead of ResNet-18; τ = 0.1 instead of 1 (with cosine "
    "similarity, τ = 1 learns the five-factor settings far too slowly for minutes of CPU); unit-norm encoder outputs "
    "(the embedding the cosine loss sees: its norm is otherwise unconstrained and can carry any factor); Adam lr 1e-3 "
    "with 100 warm-up steps and cosine decay over 2,500 steps of 256; one seed; the text CNN at base width f = 8 "
    "instead of 25 (same variable-depth rule; at 25 it cost 80 % of a step's CPU on the five-factor captions). Loss "
    "form, encoding sizes, probes and checks as the full scale. It checks which factors are recovered and which excluded, not the "
    "paper's numbers."
)



# ====================================================================== model
class MPI3DContrastiveModel(ContrastiveModel):
    """The image and text encoders: token batches of any padded width are padded (``{pad}`` = 0)
    or cut to the text encoder's length, and images are standardised per channel.

    ``pixel_mean`` / ``pixel_std`` (per channel, of ``[0, 1]`` pixels, from the train split) are
    buffers, saved with the weights.
    """

    def __init__(self, config: TrainConfig, modality_shapes: Mapping[str, Sequence[int]], *, dataset_id: str = "",
                 pixel_mean: Sequence[float] = (0.5, 0.5, 0.5), pixel_std: Sequence[float] = (0.25, 0.25, 0.25)) -> None:
        super().__init__(config, modality_shapes, dataset_id=dataset_id)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(1, -1, 1, 1))

    def _input(self, batch: Any, modality: str) -> Tensor:
        x = batch[modality] if isinstance(batch, Mapping) else batch
        if modality == TEXT:
            t = x if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))
            length = self.modality_shapes[TEXT][0]
            t = nn.functional.pad(t, (0, max(length - t.shape[1], 0)))[:, :length]
            return t.long()
        return super()._input({modality: x}, modality)

    def embed(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        out = {}
        for m, x in inputs.items():
            if m == IMAGE:
                x = (x.float().div(255.0) if x.dtype == torch.uint8 else x.float()).sub(self.pixel_mean).div(self.pixel_std)
            out[m] = self.encoders[self.encoder_of[m]](x)
        return out

    @torch.no_grad()
    def encode(self, batch: Any, *, modality: str, batch_size: int = 4096) -> Tensor:
        x = self._input(batch, modality)
        was = self.training
        self.eval()
        try:
            outs = [self.embed({modality: x[i : i + batch_size].to(self.device)})[modality].float().cpu()
                    for i in range(0, len(x), batch_size)]
        finally:
            self.train(was)
        return torch.cat(outs) if outs else torch.empty(0, self.encoding_size)


# ====================================================================== data
def _pixel_stats(ds: Any, n: int = 4096) -> tuple[list[float], list[float]]:
    rows = np.linspace(0, len(ds) - 1, min(n, len(ds))).astype(np.int64)
    mean, std = channel_stats(np.asarray(ds.column(IMAGE)[np.unique(rows)]))
    std = np.maximum(std, 1e-3)
    return mean.tolist(), std.tolist()


def _batches(ds: Any, n: int, *, seed: int, start: int) -> Iterator[dict[str, np.ndarray]]:
    """Shuffled epochs of ``n`` (image, padded tokens) rows, drop_last, resumable at step ``start``."""
    per_epoch = len(ds) // n
    if per_epoch == 0:
        raise ValueError(f"The training split has {len(ds)} examples, fewer than one batch of {n}.")
    images, tokens = ds.column(IMAGE), ds.column(TEXT)
    epoch, skip = divmod(start, per_epoch)
    while True:
        order = np.random.default_rng([seed, epoch]).permutation(len(ds))
        for k in range(skip, per_epoch):
            idx = np.sort(order[k * n : (k + 1) * n])  # ascending: a near-sequential gather
            yield {IMAGE: images[idx], TEXT: tokens.padded(idx)[0]}
        epoch, skip = epoch + 1, 0


def embed_split(model: MPI3DContrastiveModel, ds: Any, modality: str, *, batch_size: int = 2048) -> np.ndarray:
    """Embeddings of every row of a split, in order."""
    chunks = [model.encode(b, modality=modality).numpy() for b in ds.batches(batch_size, columns=[modality])]
    return np.concatenate(chunks)


# ====================================================================== training
def train_mpi3d(config: TrainConfig, *, data_dir: Any = None, cache_dir: Any = None, device: Any = None,
                out_dir: str | Path | None = None, progress: bool | None = None) -> tuple[MPI3DContrastiveModel, dict[str, Any]]:
    """Train one run (``config.dataset`` is an ``mpi3d_complex_text`` id); return the model and a record.

    Checkpoints (the format of :func:`mmbench.models.train.train`) go to ``out_dir`` every tenth
    of the run and at the end; a run with a checkpoint there resumes from it.
    """
    import mmbench
    from mmbench.models.train import _optimizer, _Prefetcher, _resume, _save_checkpoint, _tf32
    from mmbench.progress import progress_bar

    dev = resolve_device(device)
    ds = mmbench.load(config.dataset, split="train", data_dir=data_dir, cache_dir=cache_dir, **dict(config.dataset_overrides))
    model, config = _build_model(config, ds, dev)
    opt = _optimizer(model, config, dev)
    out = Path(out_dir) if out_dir is not None else None
    start, history = 0, []
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if (out / "checkpoint.safetensors").is_file():
            start, history = _resume(out, model, opt)
    stream = _batches(ds, config.batch_size, seed=config.seed, start=start)
    batches: Any = _Prefetcher(stream) if dev.type == "cuda" else stream
    every = max(config.steps // 10, 1)
    t0, running = time.perf_counter(), []
    model.train()
    with _tf32(dev.type == "cuda"), progress_bar(config.steps, desc=config.name, unit="step", progress=progress,
                                                  initial=start) as bar:
        for step in range(start + 1, config.steps + 1):
            running.append(_step(model, opt, config, next(batches), step, dev))
            bar.update(1)
            if step % config.log_every == 0 or step == config.steps:
                history.append({"step": step, "loss": float(np.mean(running)), "time": time.perf_counter() - t0})
                bar.set_postfix(loss=f"{history[-1]['loss']:.4f}")
                running = []
            if out is not None and (step % every == 0 or step == config.steps):
                _save_checkpoint(out, model, opt, step, history)
    model.trained_steps = config.steps  # type: ignore[assignment]
    model.eval()
    return model, {"steps": config.steps - start, "seconds": time.perf_counter() - t0, "history": history}


def _build_model(config: TrainConfig, ds: Any, dev: torch.device) -> tuple[MPI3DContrastiveModel, TrainConfig]:
    """The seeded model for ``ds`` (its vocabulary size and pixel statistics) and the config it records."""
    from mmbench.rendering.text import Vocabulary

    vocab = Vocabulary.from_json(ds.artifact("vocabulary.json"))
    shapes = {IMAGE: tuple(ds.info.modalities[IMAGE].shape), TEXT: (vocab.max_length,)}
    kwargs = {m: dict(config.encoder_for(m)[1]) for m in (IMAGE, TEXT)}
    kwargs[TEXT]["vocab_size"] = len(vocab)
    config = config.replace(encoder_kwargs=kwargs)
    mean, std = _pixel_stats(ds)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = MPI3DContrastiveModel(config, shapes, dataset_id=ds.id, pixel_mean=mean, pixel_std=std).to(dev)
    return model, config


def _step(model: MPI3DContrastiveModel, opt: torch.optim.Optimizer, config: TrainConfig, batch: Mapping[str, np.ndarray],
          step: int, dev: torch.device) -> float:
    """One optimisation step on ``batch`` at the schedule's learning rate; the loss."""
    inputs = {m: torch.from_numpy(np.ascontiguousarray(batch[m])).to(dev, non_blocking=True) for m in (IMAGE, TEXT)}
    for group in opt.param_groups:
        group["lr"] = config.lr_at(step)
    with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=config.amp and dev.type == "cuda"):
        z = model.embed(inputs)
    loss = model.loss_fn(z)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip or math.inf)
    opt.step()
    return float(loss.detach())


# ====================================================================== the table
def _setting_rows(setting: str) -> list[str]:
    names = [setting, "perturbation-1"] if setting == "selection-5" else [setting]
    return [f"{name} / {probe} / {MODALITY_LABEL[m]}" for name in names for probe, _ in PROBES for m in (IMAGE, TEXT)]


def _encoding_size(setting: str) -> int:
    from mmbench.builders.mpi3d import MPI3DComplexTextBuilder

    return max(3, len(MPI3DComplexTextBuilder.CONFIGS[setting].unbiased))  # type: ignore[attr-defined]


def _expected(setting: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(unbiased factors, misaligned = omitted or perturbed semantic factors) of a setting."""
    from mmbench.builders.mpi3d import SEMANTIC, MPI3DComplexTextBuilder

    unbiased = MPI3DComplexTextBuilder.CONFIGS[setting].unbiased  # type: ignore[attr-defined]
    return tuple(unbiased), tuple(f for f in SEMANTIC if f not in unbiased)


def table(scale: str) -> TableSpec:
    """The runs and checks of ``misalign-mpi3d`` at ``scale``."""
    sch = _SCALES[scale]
    norm = {"norm": sch.norm} if sch.norm else {}
    text_width = {"fbase": sch.text_fbase} if sch.text_fbase != 25 else {}  # the full scale's config stays as it was
    runs = []
    for setting in SETTINGS:
        cfg = TrainConfig(
            dataset=f"mpi3d_complex_text/{setting}", dataset_overrides=dict(REFERENCE_DATA), modalities=(IMAGE, TEXT),
            encoder={IMAGE: sch.image_encoder, TEXT: "text-conv"}, encoder_kwargs={IMAGE: dict(norm), TEXT: {"depth": "auto", **text_width, **norm}},
            encoding_size=_encoding_size(setting), loss="ntxent", loss_kwargs={"tau": sch.tau, "similarity": "cosine"},
            batch_size=sch.batch_size, steps=sch.steps, lr=sch.lr, lr_schedule=sch.lr_schedule, warmup_steps=sch.warmup_steps,
            grad_clip=2.0, data="dataset", val_every=0, log_every=max(min(1000, sch.steps // 20), 1), name=f"mpi3d-{setting}",
        )
        evals = tuple(EvalSpec(row, "mcc_matthews", IMAGE if row.endswith("ẑx") else TEXT, {f: f for f in FACTORS},
                               {"probe": "logistic" if "/ linear /" in row else "mlp"})
                      for row in _setting_rows(setting))
        runs.append(RunSpec("selection-5 = perturbation-1" if setting == "selection-5" else setting, cfg, evals))
    nonlin = [(row, setting) for setting in SETTINGS for row in _setting_rows(setting) if "non-lin." in row]
    checks = (
        Check("unbiased factors recovered (MCC ≥ 0.8, non-linear probe, both modalities)",
              tuple((row, f) for row, s in nonlin for f in _expected(s)[0]), low=0.8),
        Check("misaligned factors excluded (MCC ≤ 0.2: omitted or perturbed; both probes and modalities)",
              tuple((row, f) for s in SETTINGS for row in _setting_rows(s) for f in _expected(s)[1]), high=0.2),
        Check("image-specific factors (arm position) excluded (MCC ≤ 0.2; both probes and modalities)",
              tuple((row, f) for s in SETTINGS for row in _setting_rows(s) for f in ("horizontal", "vertical")), high=0.2),
    )
    title = "Misalignment (Cai et al. 2025), MPI3D-Complex: per-factor MCC under selection and perturbation bias"
    return TableSpec("misalign-mpi3d", title, tuple(runs), sch.seeds, 0, checks, runner=run,
                     quick_note=QUICK_NOTE if scale == "quick" else None)


# ====================================================================== one run
def quick_archive(cache_dir: Any = None) -> Path:
    """The quick scale's procedural fake archive (written once into the downloads cache)."""
    from filelock import FileLock

    from mmbench.core.builder import default_cache_dir
    from mmbench.sources import mpi3d as src
    from mmbench.testing.mpi3d import write_fake_mpi3d

    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    folder = root / "downloads" / f"mpi3d-quick-fake-{'x'.join(map(str, QUICK_FACTOR_SIZES))}-{QUICK_IMAGE_SIZE}"
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if not (folder / src.FAKE_MANIFEST).is_file():
            write_fake_mpi3d(folder, factor_sizes=QUICK_FACTOR_SIZES, image_size=QUICK_IMAGE_SIZE, style="procedural")
    return folder


def run(spec: TableSpec, index: int, seed: int, *, scale: str, device: str, steps: int | None, out_dir: str | None,
        progress: bool | None, data_dir: Any = None, cache_dir: Any = None) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """Train and probe run ``index`` of the table with ``seed``: its cells and its record."""
    from mmbench.builders.mpi3d import split_sizes_for

    runspec = spec.runs[index]
    cfg = runspec.config.replace(seed=seed, **({"steps": steps, "warmup_steps": min(runspec.config.warmup_steps, steps)} if steps else {}))
    if data_dir is None and _SCALES[scale].fake:
        data_dir = quick_archive(cache_dir)
    # the whole pools of the archive in use (the named configs' sizes are the real archive's)
    cfg = cfg.replace(dataset_overrides={**cfg.dataset_overrides, "split_sizes": split_sizes_for(data_dir)})
    rdir = Path(out_dir) / f"{cfg.name}-seed{seed}" if out_dir is not None else None
    model, record = train_mpi3d(cfg, data_dir=data_dir, cache_dir=cache_dir, device=device, out_dir=rdir, progress=progress)
    t_eval = time.perf_counter()
    cells = evaluate_run(model, runspec, cfg, seed=seed, data_dir=data_dir, cache_dir=cache_dir)
    info = {"run": runspec.name, "seed": seed, "steps": record["steps"], "train_seconds": record["seconds"],
            "eval_seconds": time.perf_counter() - t_eval,
            "final_loss": record["history"][-1]["loss"] if record["history"] else None,
            "data_dir": None if data_dir is None else str(data_dir), "config": cfg.to_dict()}
    return cells, info


def evaluate_run(model: MPI3DContrastiveModel, runspec: RunSpec, cfg: TrainConfig, *, seed: int, data_dir: Any = None,
                 cache_dir: Any = None) -> dict[str, dict[str, float]]:
    """Per-factor MCC of each row of ``runspec``: probes fitted on ``val``, scored on ``test``, clipped to [0, 1]."""
    import mmbench
    from mmbench.harness.metrics import METRICS, ProbeData

    splits = {s: mmbench.load(cfg.dataset, split=s, data_dir=data_dir, cache_dir=cache_dir, **dict(cfg.dataset_overrides))
              for s in ("val", "test")}
    latents = {s: {f: np.asarray(ds.column(f"latents.{f}")) for f in FACTORS} for s, ds in splits.items()}
    dev = "cpu" if model.device.type == "cpu" else model.device
    emb = {m: (embed_split(model, splits["val"], m), embed_split(model, splits["test"], m)) for m in (IMAGE, TEXT)}
    out: dict[str, dict[str, float]] = {}
    for ev in runspec.evals:
        z_fit, z_score = emb[ev.modality]
        data = ProbeData(z_fit, z_score, {c: latents["val"][f] for c, f in ev.columns.items()},
                         {c: latents["test"][f] for c, f in ev.columns.items()})
        res = METRICS.get(ev.metric)(data, rng=np.random.default_rng(seed), device=dev, **dict(ev.params))
        out[ev.row] = {c: float(np.clip(res[c], 0.0, 1.0)) for c in ev.columns}
    return out
