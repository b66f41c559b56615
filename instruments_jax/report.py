"""A listening report: one self-contained HTML page of the clips a model heard, for a browser opened from disk.

`evaluate` writes report.html beside eval_<split>.json: the metrics, per-class scores and
confusion matrix, then the worst clips (highest loss) and a seeded sample of the best. `predict
--report=FILE.html` writes the same page for a folder of recordings. Each clip shows its log-mel
(the first inference chunk, as the model hears it), an audio player of that chunk, the true and
predicted labels with every class's probability, and a saliency map: the gradient of the
predicted class's probability with respect to the log-mel (`jax.grad` through
`Classifier.apply_log_mel`). Everything is inside the file (images as PNG and audio as Ogg
Vorbis data URIs, the script inline): no server, no network. Rows sort by loss or confidence and
filter by class.
"""

from __future__ import annotations

import base64
import html
import io
import json

import numpy as np

from instruments_jax.data import features

MAX_SECONDS = 30.0  # the most of a clip's first inference chunk shown and embedded
MAX_ROWS = 200  # predict: the most files on one page (the least confident first)


def saliency_fn(clf):
  """Returns a jitted `(log_mel [mels, frames], class) -> d probability[class] / d log_mel`, same shape."""
  import jax

  def prob(log_mel, k):
    return clf.apply_log_mel(clf.params, log_mel)[k]

  return jax.jit(jax.grad(prob))


def _png(rgb: np.ndarray) -> str:
  import matplotlib.image

  buf = io.BytesIO()
  matplotlib.image.imsave(buf, rgb, origin="lower", format="png")
  return base64.b64encode(buf.getvalue()).decode()


def _images(mel: np.ndarray, grad: np.ndarray) -> tuple[str, str]:
  """Returns base64 PNGs of a log-mel (magma) and of its saliency laid over it in gray (red: where it matters)."""
  import matplotlib

  lo, hi = float(mel.min()), float(mel.max())
  gray = (mel - lo) / max(hi - lo, 1e-9)
  weight = np.abs(grad)
  weight = weight / max(float(weight.max()), 1e-12)
  heat = matplotlib.colormaps["hot"](weight)[..., :3]
  overlay = (1 - weight[..., None]) * (0.35 * gray[..., None]) + weight[..., None] * heat
  return _png(matplotlib.colormaps["magma"](gray)[..., :3]), _png(np.clip(overlay, 0, 1))


def _audio(wave: np.ndarray, sample_rate: int) -> str:
  import soundfile as sf

  buf = io.BytesIO()
  sf.write(buf, np.clip(wave, -1, 1), sample_rate, format="OGG", subtype="VORBIS")
  return base64.b64encode(buf.getvalue()).decode()


def clip_rows(clf, dataset, indices, probs, losses=None) -> list[dict]:
  """Returns one row per clip: names, labels, probabilities, loss, log-mel, saliency and audio."""
  cfg = clf.config
  classes = clf.classes
  threshold = cfg.prediction.probability_threshold
  grad_of = saliency_fn(clf)
  seconds = min(cfg.prediction.inference_chunk_seconds, MAX_SECONDS)
  rows = []
  for k, i in enumerate(indices):
    clip = dataset.clips[int(i)]
    wave = dataset.load(int(i), 0.0, min(seconds, max(clip.duration, 0.1)), cfg.audio.sample_rate)
    mel = features.log_mel(wave, cfg.audio)
    top = int(np.argmax(probs[k]))
    grad = np.asarray(grad_of(mel, top))
    mel_png, saliency_png = _images(mel, grad)
    rows.append({"name": clip.name, "true": list(clip.tags), "top": classes[top],
                 "above": [c for c, p in zip(classes, probs[k]) if p >= threshold],
                 "probs": {c: float(p) for c, p in zip(classes, probs[k])}, "confidence": float(probs[k][top]),
                 "loss": None if losses is None else float(losses[k]), "mel": mel_png, "saliency": saliency_png,
                 "audio": _audio(wave, cfg.audio.sample_rate), "seconds": len(wave) / cfg.audio.sample_rate})
  return rows


def evaluation_rows(clf, dataset, indices, probs, losses, count: int, seed: int = 0) -> list[dict]:
  """Returns rows of the `count` highest-loss clips and a seeded sample of `count` from the lowest-loss quarter."""
  order = np.argsort(-losses)
  worst = list(order[:count])
  rest = order[count:][-max(count, len(order) // 4):]
  best = sorted(np.random.default_rng(seed).choice(rest, min(count, len(rest)), replace=False).tolist()) if len(
      rest) else []
  picks = worst + best  # `rest` starts after the worst: the two never overlap
  rows = clip_rows(clf, dataset, [indices[k] for k in picks], probs[picks], losses[picks])
  for r, k in zip(rows, picks):
    r["group"] = "worst" if k in worst else "best"
  return rows


def _table(head, body) -> str:
  cells = lambda tag, row: "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in row)
  return (f"<table class=grid><thead><tr>{cells('th', head)}</tr></thead><tbody>"
          + "".join(f"<tr>{cells('td', r)}</tr>" for r in body) + "</tbody></table>")


def metrics_html(m: dict, confusion_png: str | None) -> str:
  """Returns the summary block of an evaluation: headline scores, per-class scores, the confusion matrix."""
  head = ["clips", "loss", "accuracy", "macro F1", "ROC-AUC", "mAP"]
  row = [m["clips"]] + [f"{m[k]:.4f}" for k in ("loss", "accuracy", "macro_f1", "roc_auc", "map")]
  per = [[c, *(f"{s[k]:.3f}" for k in ("precision", "recall", "f1", "f1_at_threshold", "ap")), s["support"]]
         for c, s in m["per_class"].items()]
  out = "<div class=summary><div><h2>Scores</h2>" + _table(head, [row])
  if m.get("multi_label"):
    out += "<p class=note>multi-label: accuracy counts clips whose label set is exactly right at the threshold</p>"
  out += "<h2>Per class</h2>" + _table(["class", "precision", "recall", "F1", "F1 at threshold", "AP", "support"], per)
  out += "</div>"
  if confusion_png:
    out += (f"<div><h2>Confusion matrix</h2><img class=confusion alt='confusion matrix' "
            f"src='data:image/png;base64,{confusion_png}'></div>")
  return out + "</div>"


def write(path: str, title: str, summary: str, rows: list[dict], classes, note: str = "") -> None:
  """Writes the page: `summary` (HTML) above a sortable, filterable table of `rows` (from clip_rows)."""
  has_loss = any(r["loss"] is not None for r in rows)
  sorts = ([("loss-desc", "loss, highest first"), ("loss-asc", "loss, lowest first")] if has_loss else []) + [
      ("conf-asc", "confidence, lowest first"), ("conf-desc", "confidence, highest first"), ("name-asc", "file name")]
  body = []
  for r in rows:
    probs = "".join(f"<div class=bar><span class=lab>{html.escape(c)}</span><span class=track><span class=fill "
                    f"style='width:{100 * p:.1f}%'></span></span><span class=num>{p:.3f}</span></div>"
                    for c, p in sorted(r["probs"].items(), key=lambda kv: -kv[1]))
    true = "|".join(r["true"]) if r["true"] else ""
    said = "|".join(r["above"]) or "none"
    wrong = bool(r["true"]) and set(r["above"] if len(r["true"]) != 1 else [r["top"]]) != set(r["true"])
    labels = {*r["true"], r["top"], *r["above"]}
    body.append(
        f"<tr class='clip{' wrong' if wrong else ''}' data-name='{html.escape(r['name'])}' "
        f"data-loss='{r['loss'] if r['loss'] is not None else ''}' data-conf='{r['confidence']:.6f}' "
        f"data-labels='{html.escape(json.dumps(sorted(labels)))}'>"
        f"<td class=who><div class=name>{html.escape(r['name'])}</div>"
        + (f"<div>true: <b>{html.escape(true)}</b></div>" if r["true"] else "")
        + f"<div>predicted: <b>{html.escape(r['top'])}</b></div>"
        + f"<div class=small>at threshold: {html.escape(said)}</div>"
        + (f"<div class=small>loss {r['loss']:.3f} ({r.get('group', '')})</div>" if r["loss"] is not None else "")
        + f"</td><td class=probs>{probs}</td>"
        f"<td><img class=spec alt='log-mel' src='data:image/png;base64,{r['mel']}'>"
        f"<audio controls preload=metadata src='data:audio/ogg;base64,{r['audio']}'></audio>"
        f"<div class=small>first {r['seconds']:.1f} s, as the model hears it</div></td>"
        f"<td><img class=spec alt='saliency' src='data:image/png;base64,{r['saliency']}'>"
        f"<div class=small>d p({html.escape(r['top'])}) / d log-mel</div></td></tr>")
  options = "".join(f"<option value='{v}'>{html.escape(t)}</option>" for v, t in sorts)
  filters = "<option value=''>all classes</option>" + "".join(
      f"<option value='{html.escape(c)}'>{html.escape(c)}</option>" for c in classes)
  page = _PAGE.format(title=html.escape(title), summary=summary, note=html.escape(note), options=options,
                      filters=filters, rows="".join(body), total=len(rows))
  with open(path, "w", encoding="utf-8") as f:
    f.write(page)


_PAGE = """<!doctype html>
<html lang=en><head><meta charset=utf-8><title>{title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d1d1f; background: #fafafa; }}
h1 {{ font-size: 20px; }} h2 {{ font-size: 16px; margin-top: 22px; }}
table.grid {{ border-collapse: collapse; }} table.grid td, table.grid th {{ border: 1px solid #ddd; padding: 3px 8px; }}
table.grid th {{ background: #eee; }} img.confusion {{ max-width: 440px; }}
.summary {{ display: flex; gap: 40px; flex-wrap: wrap; align-items: flex-start; }}
.note, .small {{ color: #666; font-size: 12px; }}
#controls {{ position: sticky; top: 0; background: #fafafa; padding: 8px 0; border-bottom: 1px solid #ddd; }}
#clips {{ border-collapse: collapse; width: 100%; }} #clips td {{ border-bottom: 1px solid #e4e4e4; padding: 8px;
  vertical-align: top; }}
tr.wrong td.who {{ border-left: 4px solid #c62828; }} .name {{ font-weight: 600; word-break: break-all; }}
img.spec {{ width: 340px; height: 120px; image-rendering: pixelated; display: block; }}
audio {{ width: 340px; margin-top: 4px; }}
.bar {{ display: flex; align-items: center; gap: 6px; font-size: 12px; }} .lab {{ width: 70px; }}
.track {{ width: 120px; height: 8px; background: #e6e6e6; }} .fill {{ display: block; height: 8px; background: #3b78c4; }}
</style></head><body>
<h1>{title}</h1>
{summary}
<h2>Clips</h2><p class=note>{note}</p>
<div id=controls>sort by <select id=sort>{options}</select>
 show <select id=filter>{filters}</select> <span id=count></span></div>
<table id=clips><tbody>{rows}</tbody></table>
<script>
(function () {{
  const body = document.querySelector('#clips tbody');
  const rows = Array.from(body.querySelectorAll('tr.clip'));
  const key = {{
    'loss-desc': r => -parseFloat(r.dataset.loss), 'loss-asc': r => parseFloat(r.dataset.loss),
    'conf-asc': r => parseFloat(r.dataset.conf), 'conf-desc': r => -parseFloat(r.dataset.conf),
    'name-asc': r => r.dataset.name }};
  function update() {{
    const by = key[document.getElementById('sort').value];
    const want = document.getElementById('filter').value;
    rows.sort((a, b) => {{ const x = by(a), y = by(b); return x < y ? -1 : x > y ? 1 : 0; }});
    let shown = 0;
    for (const r of rows) {{
      const keep = !want || JSON.parse(r.dataset.labels).includes(want);
      r.style.display = keep ? '' : 'none';
      shown += keep;
      body.appendChild(r);
    }}
    document.getElementById('count').textContent = shown + ' of {total} clips';
  }}
  document.getElementById('sort').addEventListener('change', update);
  document.getElementById('filter').addEventListener('change', update);
  update();
}})();
</script></body></html>
"""
