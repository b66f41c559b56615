r"""Chooses `quick`'s recipe on a held-out sound engine, then scores test and unseen (issue 15).

    python experiments/engine_select.py --runs=runs/engine_select [--only=a,b] [--unseen] [--cache_dir=DIR]
        [--validation_engine=physical|fluid|freepats] [--validation_fold=-1]

Each candidate trains with `data.validation_strategy=engine`: the clips the benchmark mix
gives the physical engine never train, and those of them in fold 4 (181 clips, the same
for every candidate, chains included) validate (with `--validation_engine=fluid`: the clips the
benchmark plus the second sample library gives that library, rendered by it); `quick`'s seed and epochs unless the candidate
sets them (the third round runs each candidate at seeds 0 and 1 and chooses on the mean; seeds 2 and 3 measure
how far the reference moves by chance). The table's validation columns are what the choice reads; test and unseen are
printed beside them, and `--unseen` is passed once, after the choice. A finished run is not
trained again. Rows go to stdout as a Markdown table with the command of each. With
`--cache_dir`, the first run renders every clip whole into that feature cache and the rest cut
their windows from it (a 5-epoch cnn8 run: about 3.4 minutes warm against 5.5 uncached; the
bits differ slightly from uncached runs, so compare cached rows with cached rows).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from instruments_jax.configs.schema import MUSICNN_WIDE_AUDIO

CNN8 = "--config=quick --config.model.backbone=cnn8"
EP5 = "--config.train.epochs=5 --config.train.evaluation_epochs=5"  # the third round's choice
FIRST10 = f"{EP5} --config.data.max_clip_seconds=10"  # fifth round: clips read up to their first 10 s
DROP = f"{FIRST10} --config.model.dropout=0.3"  # sixth round's base: the fifth round's choice
FREEPATS = "--config.data.synth_engines=soundfont,physical,spectral,freepats"  # ninth round's mix
MEL128_HOP1024 = "--config.audio.mel_bins=128 --config.audio.hop_size=1024"  # eleventh round: 128 bands, same pixels
# stop 34: musicnn's MagnaTagATune weights (model.weights=musicnn), frozen, on the front end they were trained on;
# only the classifier trains (3 s windows, as musicnn was trained)
MUSICNN = ("--config.model.backbone=musicnn --config.model.weights=musicnn --config.model.freeze=backbone "
           "--config.audio.sample_rate=16000 --config.audio.stft_window_size=512 --config.audio.hop_size=256 "
           "--config.audio.mel_bins=96 --config.audio.fmin=0 --config.audio.fmax=8000 "
           "--config.audio.training_chunk_seconds=3 --config.prediction.inference_chunk_seconds=3")
# stop 35: cnn8 from scratch beside frozen musicnn features (its back-end trains), one classifier over both
HYBRID = MUSICNN.replace("backbone=musicnn", "backbone=cnn8+musicnn").replace("freeze=backbone", "freeze=features")
# ... on musicnn's frames at 32 kHz, 117 bands spaced as its 96 (schema.MUSICNN_WIDE_AUDIO): cnn8 hears up to 15.7 kHz
WIDE = " ".join(f"--config.{path}={value}" for path, value in MUSICNN_WIDE_AUDIO.items())
HYBRID_WIDE = " ".join(f for f in HYBRID.split() if not f.startswith("--config.audio.") or "chunk" in f) + " " + WIDE
# ... and its control: cnn8 alone on musicnn's front end (16 kHz, 96 bands, 3 s windows)
MFRONT = " ".join(f for f in MUSICNN.split() if f.startswith(("--config.audio.", "--config.prediction.")))
HOLD_OUT = "--config.data.validation_strategy=engine --config.data.validation_engine={engine}"  # --validation_engine
CANDIDATES = {
    # the embedded set as it was: the soundfont only, dry
    "before": "--config=quick --config.data.synth_engines=soundfont --config.data.synth_chain_prob=0",
    "engines": "--config=quick --config.data.synth_chain_prob=0",
    "engines+chains": "--config=quick",
    "engines+chains+freqnorm": "--config=quick --config.audio.spectrogram_normalization=frequency",
    "engines+chains+balanced": "--config=quick --config.data.sampling=balanced",
    "engines+chains+freqnorm+balanced": "--config=quick --config.audio.spectrogram_normalization=frequency "
                                        "--config.data.sampling=balanced",
    "engines+chains0.5": "--config=quick --config.data.synth_chain_prob=0.5",
    # each model-engine train clip a voice of its own between two listed voices (engines.blend_voice)
    "engines+chains+voices0.5": "--config=quick --config.data.synth_voice_spread=0.5",
    "engines+chains+voices1": "--config=quick --config.data.synth_voice_spread=1.0",
    # more, smaller steps in the same time (batch 16: 0.92x the samples/s of batch 32 here, twice the updates)
    "engines+chains+batch16": "--config=quick --config.train.batch_size=16",
    # a cheaper step (48 mel bins: 1.25-1.4x the samples/s of 64 here) and a hotter schedule
    "engines+chains+mels48": "--config=quick --config.audio.mel_bins=48",
    "engines+chains+lr2e-3": "--config=quick --config.train.learning_rate=2e-3",
    # the recipe's own augmentation (mixup on the log-mel batch, as `strong` sets it)
    "engines+chains+mixup": "--config=quick --config.augmentation.mix_audio=mixup "
                            "--config.augmentation.mix_concentration=0.4 --config.augmentation.mix_probability=0.5",
    # the chosen recipe again with another seed (weights, batch order; the same clips): how far rows move by chance
    "engines+chains-seed1": "--config=quick --config.seed=1",
    "engines+chains+voices0.5-seed1": "--config=quick --config.data.synth_voice_spread=0.5 --config.seed=1",
    # a smaller backbone (model.cnn8: ~8x ResNet50's step rate here), so the same minutes see more
    # windows; every cnn8 candidate at seeds 0 and 1. 3 epochs take 4-5 minutes a run here; 8 take
    # about the minutes of ResNet50's 3.
    **{f"engines+chains+cnn8{name}{suffix}": " ".join(filter(None, (CNN8, flags, seed)))
       for name, flags in {"": "",
                           "-8ep": "--config.train.epochs=8 --config.train.evaluation_epochs=8",
                           "+specaug": "--config.augmentation.freq_masks=2 --config.augmentation.time_masks=2",
                           "-5ep": EP5,
                           "+lr3e-3": "--config.train.learning_rate=3e-3",
                           "+freqnorm": "--config.audio.spectrogram_normalization=frequency",
                           # fourth round, on the 5-epoch choice: capacity (model.width), more epochs,
                           # and regularization (dropout, weight decay) and pooling
                           "-5ep+w1.5": f"{EP5} --config.model.width=1.5",
                           "-5ep+w2": f"{EP5} --config.model.width=2",
                           "-10ep": "--config.train.epochs=10 --config.train.evaluation_epochs=10",
                           "-5ep+drop0.3": f"{EP5} --config.model.dropout=0.3",
                           "-5ep+wd0.05": f"{EP5} --config.train.weight_decay=0.05",
                           "-5ep+maxpool": f"{EP5} --config.model.pool=max",
                           # fifth round: each clip read up to its first 10 s (data.max_clip_seconds), so a
                           # feature cache fills in about half the whole clips' time; at width 1 and 1.5
                           "-5ep+first10": FIRST10,
                           "-5ep+first10+w1.5": f"{FIRST10} --config.model.width=1.5",
                           # ... and, on the same cache, the loss and regularization
                           "-5ep+first10+softmax": f"{FIRST10} --config.train.loss=softmax",
                           "-5ep+first10+drop0.3": DROP,
                           "-5ep+first10+wd0.05": f"{FIRST10} --config.train.weight_decay=0.05",
                           # sixth round, on the fifth's choice (dropout 0.3): more dropout, longer windows
                           # (more of each note's attack and decay in view), finer frequency detail
                           "-5ep+first10+drop0.5": f"{FIRST10} --config.model.dropout=0.5",
                           "-5ep+first10+drop0.3+chunk3": f"{DROP} --config.audio.training_chunk_seconds=3 "
                                                          "--config.prediction.inference_chunk_seconds=3",
                           "-5ep+first10+drop0.3+mel128": f"{DROP} --config.audio.mel_bins=128",
                           # seventh round, on the same base: the two regularizers of the fourth round's
                           # list that never ran (max pooling keeps a note's strongest onset; weight decay)
                           "-5ep+first10+drop0.3+maxpool": f"{DROP} --config.model.pool=max",
                           "-5ep+first10+drop0.3+wd0.05": f"{DROP} --config.train.weight_decay=0.05",
                           # eighth round: a second sample library (FluidR3 GM, data/soundfonts.py) as a fourth
                           # engine of the train mix; test, unseen and the held-out clips stay as they were
                           "-5ep+first10+drop0.3+fluid": f"{DROP} "
                                                         "--config.data.synth_engines=soundfont,physical,spectral,fluid",
                           # ... and, with the second library held out instead (--validation_engine=fluid),
                           # features and augmentation meant to carry across libraries and microphones
                           "-5ep+first10+drop0.3+freqnorm": f"{DROP} --config.audio.spectrogram_normalization=frequency",
                           "-5ep+first10+drop0.3+specaug": f"{DROP} --config.augmentation.freq_masks=2 "
                                                           "--config.augmentation.time_masks=2",
                           # the physical engine out of the train mix: the runs that never heard it
                           # scored higher on FluidR3's clips (library_eval.py)
                           "-5ep+first10+drop0.3-physical": f"{DROP} --config.data.synth_engines=soundfont,spectral",
                           # ninth round: a third sample library (FreePats, data/freepats.py). Each library
                           # added to the mix is judged on a library it does not hold: fluid on the freepats
                           # hold-out, freepats on the fluid hold-out; both at once only on physical
                           "-5ep+first10+drop0.3+freepats": f"{DROP} {FREEPATS}",
                           "-5ep+first10+drop0.3+fluid+freepats": f"{DROP} --config.data.synth_engines=soundfont,"
                                                                  "physical,spectral,fluid,freepats",
                           # tenth round, on the ninth's choice (+freepats), judged on the fluid and physical
                           # hold-outs: the same 64 bands over 50-8000 Hz (twice the detail where the partials
                           # that part guitar from piano lie, the same step), and mixup
                           "-5ep+first10+drop0.3+freepats+fmax8k": f"{DROP} {FREEPATS} --config.audio.fmax=8000",
                           "-5ep+first10+drop0.3+freepats+mixup": f"{DROP} {FREEPATS} "
                                                                  "--config.augmentation.mix_audio=mixup "
                                                                  "--config.augmentation.mix_concentration=0.4 "
                                                                  "--config.augmentation.mix_probability=0.5",
                           # eleventh round, on the same base and hold-outs: twice the frequency detail (the
                           # recipe's 128 bands), at twice the pixels, and at the same pixels by halving the
                           # frame rate (hop 1024: 87 frames a 2 s window, the step's cost unchanged)
                           "-5ep+first10+drop0.3+freepats+mel128": f"{DROP} {FREEPATS} --config.audio.mel_bins=128",
                           "-5ep+first10+drop0.3+freepats+mel128+hop1024": f"{DROP} {FREEPATS} {MEL128_HOP1024}",
                           # ... and the second of them on the FreePats hold-out, without FreePats in training
                           # (the ninth round's reference mix): the two hold-outs above disagreed
                           "-5ep+first10+drop0.3+mel128+hop1024": f"{DROP} {MEL128_HOP1024}",
                           # twelfth round: the mean of the weights over the second half of training
                           # (train.average_from, stochastic weight averaging), on quick's recipe and, for the
                           # FreePats hold-out, on the ninth round's reference mix
                           "-5ep+first10+drop0.3+freepats+avg0.5": f"{DROP} {FREEPATS} --config.train.average_from=0.5",
                           "-5ep+first10+drop0.3+avg0.5": f"{DROP} --config.train.average_from=0.5",
                           # ... and cnn8 at width 1.5 (the fourth round's best on the physical hold-out, set
                           # aside then for the minutes of an AVX2 machine), on the same base and hold-outs
                           "-5ep+first10+drop0.3+freepats+w1.5": f"{DROP} {FREEPATS} --config.model.width=1.5",
                           "-5ep+first10+drop0.3+w1.5": f"{DROP} --config.model.width=1.5",  # the FreePats hold-out
                           # the first candidate under the every-clip, four-seed rule: voices of their own for the
                           # model engines' train clips (the fifth round's spread, judged then on physical alone)
                           "-5ep+first10+drop0.3+freepats+voices0.25": f"{DROP} {FREEPATS} "
                                                                       "--config.data.synth_voice_spread=0.25",
                           "-5ep+first10+drop0.3+voices0.25": f"{DROP} --config.data.synth_voice_spread=0.25",
                           # fourteenth round: PANNs' head (the mean over frequency, then max + mean over time)
                           "-5ep+first10+drop0.3+freepats+panns": f"{DROP} {FREEPATS} --config.model.pool=panns",
                           "-5ep+first10+drop0.3+panns": f"{DROP} --config.model.pool=panns",  # the FreePats hold-out
                           # and label smoothing 0.1 (each BCE target 0.05 / 0.95)
                           "-5ep+first10+drop0.3+freepats+ls0.1": f"{DROP} {FREEPATS} --config.train.label_smoothing=0.1",
                           "-5ep+first10+drop0.3+ls0.1": f"{DROP} --config.train.label_smoothing=0.1",
                           # fifteenth round: label smoothing 0.2 (each BCE target 0.1 / 0.9)
                           "-5ep+first10+drop0.3+freepats+ls0.2": f"{DROP} {FREEPATS} --config.train.label_smoothing=0.2",
                           "-5ep+first10+drop0.3+ls0.2": f"{DROP} --config.train.label_smoothing=0.2",
                           # sixteenth round, data: model-engine guitars through an overdriven amplifier and
                           # cabinet (data.synth_guitar_amp; the sustained electric guitar of programs 29 and 30),
                           "-5ep+first10+drop0.3+freepats+amp0.3": f"{DROP} {FREEPATS} --config.data.synth_guitar_amp=0.3",
                           "-5ep+first10+drop0.3+amp0.3": f"{DROP} --config.data.synth_guitar_amp=0.3",
                           # stop 33: the two candidates that rose on all three hold-outs, together
                           "-5ep+first10+drop0.3+freepats+amp0.3+ls0.1": f"{DROP} {FREEPATS} "
                                                                        "--config.data.synth_guitar_amp=0.3 "
                                                                        "--config.train.label_smoothing=0.1",
                           "-5ep+first10+drop0.3+amp0.3+ls0.1": f"{DROP} --config.data.synth_guitar_amp=0.3 "
                                                                "--config.train.label_smoothing=0.1",
                           # and three times the chains' distortion, every class (data.synth_distortion_prob)
                           "-5ep+first10+drop0.3+freepats+dist0.3": f"{DROP} {FREEPATS} "
                                                                    "--config.data.synth_distortion_prob=0.3",
                           "-5ep+first10+drop0.3+dist0.3": f"{DROP} --config.data.synth_distortion_prob=0.3",
                           # and the sample libraries' clips with their resonances moved up to 3 semitones
                           # either way, the notes kept (data.synth_formant_shift)
                           "-5ep+first10+drop0.3+freepats+shift3": f"{DROP} {FREEPATS} --config.data.synth_formant_shift=3",
                           "-5ep+first10+drop0.3+shift3": f"{DROP} --config.data.synth_formant_shift=3",
                           # stop 34: a network trained on real recordings, frozen; the classifier alone trains
                           "-5ep+first10+drop0.3+freepats+musicnn": f"{DROP} {FREEPATS} {MUSICNN}",
                           "-5ep+first10+drop0.3+musicnn": f"{DROP} {MUSICNN}",
                           # a linear probe wants a hotter schedule than a network trained from scratch
                           "-5ep+first10+drop0.3+freepats+musicnn+lr1e-2": f"{DROP} {FREEPATS} {MUSICNN} "
                                                                           "--config.train.learning_rate=1e-2",
                           # ... musicnn's back-end (its pooled features' dense layer) trained too (the second
                           # for the FreePats hold-out)
                           "-5ep+first10+drop0.3+freepats+musicnn+backend": f"{DROP} {FREEPATS} {MUSICNN} "
                                                                            "--config.model.freeze=features",
                           "-5ep+first10+drop0.3+musicnn+backend": f"{DROP} {MUSICNN} --config.model.freeze=features",
                           # ... its classifier started from musicnn's guitar, drums, violin and piano tag units
                           # (model.head_init=tags), and those units alone (no step: zero-shot)
                           "-5ep+first10+drop0.3+freepats+musicnn+tags+lr1e-2": f"{DROP} {FREEPATS} {MUSICNN} "
                                                                                "--config.model.head_init=tags "
                                                                                "--config.train.learning_rate=1e-2",
                           "-5ep+first10+drop0.3+freepats+musicnn+tags-zeroshot": f"{DROP} {FREEPATS} {MUSICNN} "
                                                                                  "--config.model.head_init=tags "
                                                                                  "--config.train.learning_rate=0 "
                                                                                  "--config.train.epochs=1 "
                                                                                  "--config.train.evaluation_epochs=1",
                           "-5ep+first10+drop0.3+freepats+hybrid": f"{DROP} {FREEPATS} {HYBRID}",
                           "-5ep+first10+drop0.3+hybrid": f"{DROP} {HYBRID}",
                           # ... musicnn's features dropped whole for half the samples (model.branch_dropout)
                           "-5ep+first10+drop0.3+freepats+hybrid+bdrop0.5": f"{DROP} {FREEPATS} {HYBRID} "
                                                                            "--config.model.branch_dropout=0.5",
                           "-5ep+first10+drop0.3+hybrid+bdrop0.5": f"{DROP} {HYBRID} --config.model.branch_dropout=0.5",
                           "-5ep+first10+drop0.3+freepats+hybrid+wide": f"{DROP} {FREEPATS} {HYBRID_WIDE}",
                           "-5ep+first10+drop0.3+hybrid+wide": f"{DROP} {HYBRID_WIDE}",
                           "-5ep+first10+drop0.3+freepats+hybrid+wide+bdrop0.5": f"{DROP} {FREEPATS} {HYBRID_WIDE} "
                                                                                 "--config.model.branch_dropout=0.5",
                           "-5ep+first10+drop0.3+hybrid+wide+bdrop0.5": f"{DROP} {HYBRID_WIDE} "
                                                                        "--config.model.branch_dropout=0.5",
                           "-5ep+first10+drop0.3+freepats+mfront": f"{DROP} {FREEPATS} {MFRONT}",
                           "-5ep+first10+drop0.3+mfront": f"{DROP} {MFRONT}",
                           }.items()
       for suffix, seed in (("", ""), *((f"-seed{k}", f"--config.seed={k}") for k in (1, 2, 3)))},
}


def _train(name, flags, runs, py, cache_dir="", hold_out=HOLD_OUT.format(engine="physical")):
  work = os.path.join(runs, name)
  done = os.path.join(work, "eval_validation.json")
  if os.path.exists(done):
    return
  cmd = [py, "-m", "instruments_jax.train", *flags.split(), *hold_out.split(), f"--workdir={work}",
         "--config.train.restart=true"] + ([f"--config.data.cache_dir={cache_dir}"] if cache_dir else [])
  t0 = time.time()
  with open(os.path.join(runs, f"{name}.log"), "w") as log:
    subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
  wall = time.time() - t0
  for split in ("validation", "test"):
    subprocess.run([py, "-m", "instruments_jax.evaluate", f"--workdir={work}", f"--split={split}", "--report=none"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  with open(os.path.join(work, "wall.json"), "w") as f:
    json.dump({"train_wall_s": wall, "cache_dir": cache_dir}, f)


def _row(m):
  pc = m["per_class"]
  return (f"{m['accuracy']:.4f} / {m['macro_f1']:.4f} / {m['roc_auc']:.4f} / "
          f"{pc['guitar']['recall']:.2f} / {pc['piano']['recall']:.2f}")


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument("--runs", default="runs/engine_select")
  p.add_argument("--only", default="")
  p.add_argument("--unseen", action="store_true", help="also evaluate the unseen split (after the choice)")
  p.add_argument("--python", default=sys.executable)
  p.add_argument("--cache_dir", default="", help="train with the feature cache in this folder (shared by the runs: "
                                                  "the first fills it, the rest read it)")
  p.add_argument("--validation_engine", default="physical",
                 help="the engine held out: physical (a model engine), or fluid or freepats (a sample library the "
                      "benchmark lacks: the clips the benchmark with it added gives it validate, rendered by it)")
  p.add_argument("--validation_fold", type=int, default=None,
                 help="the fold of the held-out clips that validates (quick's: 4); -1: every held-out clip")
  a = p.parse_args(argv)
  hold_out = HOLD_OUT.format(engine=a.validation_engine)
  if a.validation_fold is not None:
    hold_out += f" --config.data.validation_fold={a.validation_fold}"
  os.makedirs(a.runs, exist_ok=True)
  names = [n for n in CANDIDATES if not a.only or n in a.only.split(",")]
  for name in names:
    _train(name, CANDIDATES[name], a.runs, a.python, a.cache_dir, hold_out)
  print("| candidate | held-out-engine validation | test | unseen | train wall | command |")
  print("|---|---|---|---|---|---|")
  for name in names:
    work = os.path.join(a.runs, name)
    m = {s: json.load(open(os.path.join(work, f"eval_{s}.json"))) for s in ("validation", "test")
         if os.path.exists(os.path.join(work, f"eval_{s}.json"))}
    if a.unseen and not os.path.exists(os.path.join(work, "eval_unseen.json")):
      subprocess.run([a.python, "-m", "instruments_jax.evaluate", f"--workdir={work}", "--split=unseen",
                      "--report=none"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if os.path.exists(os.path.join(work, "eval_unseen.json")):
      m["unseen"] = json.load(open(os.path.join(work, "eval_unseen.json")))
    wall = os.path.join(work, "wall.json")  # absent for a run trained some other way: its wall time is unknown,
    timing = (json.load(open(wall)) if os.path.exists(wall)  # and its cache is the one its config.json names
              else {"cache_dir": json.load(open(os.path.join(work, "config.json")))["data"]["cache_dir"]})
    cached = f" --config.data.cache_dir={timing['cache_dir']}" if timing.get("cache_dir") else ""
    cols = [_row(m[s]) if s in m else "-" for s in ("validation", "test", "unseen")]
    took = f"{timing['train_wall_s']:.0f} s" if "train_wall_s" in timing else "-"
    print(f"| {name} | {' | '.join(cols)} | {took} | `train {CANDIDATES[name]} {hold_out}{cached}` |")
  print("\ncolumns: accuracy / macro F1 / ROC-AUC / guitar recall / piano recall")


if __name__ == "__main__":
  main()
