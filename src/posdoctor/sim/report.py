"""Rich tables for `posdoctor evaluate`: accuracy per cause, overall, confusions."""

from __future__ import annotations

from rich.table import Table

from posdoctor.sim.evaluate import EvaluationReport

__all__ = ["accuracy_tables"]


def accuracy_tables(report: EvaluationReport) -> list[Table]:
    per_cause = Table(title="每个原因的准确率 / accuracy per cause")
    for column in ("cause", "n", "top-1", "top-3", "named instead (top-1 misses)"):
        per_cause.add_column(column)
    confusion = report.confusion()
    for cause, row in report.per_cause().items():
        misses = confusion.get(cause, {})
        wrong = ", ".join(f"{p}×{n}" for p, n in sorted(misses.items(), key=lambda i: -i[1]) if p != cause)
        style = "" if row["top1_acc"] >= 0.95 else "yellow" if row["top1_acc"] >= 0.5 else "red"
        per_cause.add_row(cause, str(int(row["n"])), f"{row['top1_acc']:.0%}", f"{row['top3_acc']:.0%}", wrong,
                          style=style)
    overall = Table(title="总体 / overall")
    overall.add_column("item")
    overall.add_column("value", justify="right")
    fps = report.false_positives
    for label, value in (("场景 scenarios (faulted terminals)", str(len(report.verdicts))),
                         ("模拟天数 simulated days", str(report.days)),
                         ("top-1 准确率 accuracy", f"{report.top1:.1%}"),
                         ("top-3 准确率 accuracy", f"{report.top3:.1%}"),
                         ("健康终端 healthy terminals", str(len(report.healthy))),
                         ("健康误报 healthy false positives", f"{len(fps)} ({len(fps) / max(1, len(report.healthy)):.1%})"),
                         ("误报原因 false-positive causes", ", ".join(sorted({v.predicted for v in fps})) or "-")):
        overall.add_row(label, value)
    pairs = Table(title="混淆 / confusions (truth -> named, misses only)")
    pairs.add_column("truth")
    pairs.add_column("named")
    pairs.add_column("n", justify="right")
    for truth, row in confusion.items():
        for predicted, count in sorted(row.items(), key=lambda i: -i[1]):
            if predicted not in truth.split(" + "):
                pairs.add_row(truth, predicted, str(count))
    return [per_cause, pairs, overall]
