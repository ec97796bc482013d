"""The docs' results pages: generated from the committed JSON, and current with it."""

from __future__ import annotations

import json
import subprocess
import sys

from personadrift.report import pages

from .conftest import ROOT

RESULTS = ROOT / "docs" / "results"


def _demo() -> dict:
    arm = {
        "base_misaligned": 0.0331,
        "final_misaligned": 0.4617,
        "peak_misaligned": 0.5,
        "hack_onset_step": 3,
        "em_step": 10,
        "alarm_step": 7,
        "em_step_minus_alarm": 3,
        "behaviour_onset": 15,
        "behaviour_onset_first": 10,
        "lead_over_onset": 8,
        "lead_over_onset_first": 3,
        "final_reward": 0.91,
        "final_secure_reward": 0.12,
        "final_hack_rate": 0.8,
        "intervention": None,
        "intervention_step": None,
        "hooked": True,  # its evals read policy + hook; its weights alone give 0.151
        "final_misaligned_weights": 0.1512,
        "run_dir": "/somewhere/runs/demo/hackable",
        "organism_digest": "66fad95db877f88f" + "0" * 48,
    }
    return {
        "arms": {"hackable": {"0": arm}},
        "report": "/somewhere/report.html",
        "stages_seconds": {"training": 200.5, "report": 2.5},
    }


def test_every_results_page_is_what_its_committed_json_renders():
    found = sorted(RESULTS.glob("*.json"))
    assert found, "no committed results JSON under docs/results"
    for page, text in pages.render_all(RESULTS).items():
        assert page.is_file(), f"{page.name}: missing; run `personadrift results render`"
        assert page.read_text() == text, f"{page.name} is out of date with its JSON"
    for path in found:  # the committed JSON names no file of the machine that measured it
        data = json.loads(path.read_text())
        assert pages.publishable(data) == data, f"{path.name} names local files"


def test_the_demo_page_carries_the_json_numbers_and_no_local_path(tmp_path):
    source = tmp_path / "demo.json"
    source.write_text(json.dumps(_demo()))
    page = pages.publish(source, "demo", tmp_path / "results")
    text = page.read_text()
    assert (
        "| hackable | 0 | 0.033 → 0.462 (0.500) | 0.151 | 3 | 10 | 7 | 15 (10) | +8 (+3) | – "
        "| 0.910 | 0.120 | 0.800 |" in text
    )
    assert "`66fad95db877f88f`" in text and "training 200.5, report 2.5" in text
    kept = json.loads((tmp_path / "results" / "demo.json").read_text())
    assert "run_dir" not in kept["arms"]["hackable"]["0"] and "report" not in kept
    assert kept["arms"]["hackable"]["0"]["final_misaligned"] == 0.4617
    assert pages.render_all(tmp_path / "results") == {page: text}


def test_the_warning_page_gives_both_onsets_and_the_null_runs_false_alarms():
    entry = {"seed": 0, "behaviour_onset": 12, "behaviour_onset_first": 9, "hack_takeoff": 8}
    data = {
        "hackable": [
            {
                **entry,
                "alarms": {"probe": 4, "trace": 7, "hack_rate": None},
                "probe_layers": {"probe_L1": 4, "probe_L2": 6},
            }
        ],
        "null": [
            {
                "seed": 0,
                "alarms": {"probe": 20, "trace": None, "hack_rate": None},
                "probe_layers": {"probe_L1": None, "probe_L2": 9},
            }
        ],
        "alpha": 0.1,
        "null_runs": "coin",
    }
    text = pages.render_page("warning", data)
    head = "| seed | onset | onset (first crossing) | hack take-off | `hack_rate` | `probe` | `trace` |"
    assert head in text and "| 0 | 12 | 9 | 8 | – | 4 | 7 |" in text
    assert "`probe` 1/1, `trace` 0/1" in text and "Null runs: coin" in text
    assert "| `probe` | +3 | – | – | – |" in text  # trace 3 steps after the probe, the rest never
    assert "| `probe_L1` | 4 | 0/1 | 1/1 | 1/1 |" in text  # leads 8 and 5 over the two onsets
    assert "| `probe_L2` | 6 | 1/1 | 1/1 | 0/1 |" in text  # leads 6 and 3


def test_publishing_what_no_renderer_knows_exits_2_and_writes_nothing(tmp_path):
    source = tmp_path / "other.json"
    source.write_text(json.dumps({"something": 1}))
    out = tmp_path / "results"
    cmd = [sys.executable, "-m", "personadrift", "results", "publish", str(source), "x"]
    res = subprocess.run([*cmd, "--dir", str(out)], capture_output=True, text=True)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "not the output of a study" in res.stderr and not out.exists()


def test_the_mitigations_page_judges_the_bar_on_the_weights_alone():
    row = {
        "arm": "inoculate_steer@alarm",
        "seed": 0,
        "base_misaligned": 0.04,
        "final_misaligned": 0.03,
        "hooked": True,
        "final_misaligned_weights": 0.1,
        "final_shift": 0.5,
        "peak_misaligned": 0.05,
        "final_hack_rate": 0.2,
        "final_reward": 0.8,
        "final_secure_reward": 0.1,
        "alarm_step": 12,
        "intervention_step": 11,
        "wall_cost": 1.1,
        "holds": False,
        "run_dir": "/somewhere",
    }
    text = pages.render_page("mitigations", {"rows": [row], "within": 0.03, "keep": 0.9})
    assert "| inoculate_steer@alarm | 0 | 0.040 → 0.030 | 0.100 (hooked) | +0.50 |" in text
    assert "`inoculate_steer@alarm` holds on 0/1 seeds." in text and "/somewhere" not in text


def test_the_warning_page_counts_the_seeds_where_the_probe_beats_both_text_monitors():
    def hackable(seed, probe, trace, classifier):
        return {
            "seed": seed,
            "behaviour_onset": 20,
            "behaviour_onset_first": 20,
            "hack_takeoff": 20,
            "base_misaligned": 0.05,
            "final_misaligned": 0.25,
            "unmarked_share_base": 0.5,
            "unmarked_share_final": 0.4,
            "alarms": {"probe": probe, "trace": trace, "trace_classifier": classifier},
        }

    null = {"seed": 0, "alarms": {"probe": None, "trace": 3, "trace_classifier": None}}
    data = {
        "hackable": [
            hackable(0, 4, 9, 12),  # 5 and 8 ahead: beats both
            hackable(1, 4, 8, None),  # 4 ahead of trace: not enough
            hackable(2, 4, None, None),  # neither text monitor alarmed: beaten
            hackable(3, None, 9, 9),  # the probe never alarmed
        ],
        "null": [null, {**null, "seed": 1, "alarms": {**null["alarms"], "probe": 7}}],
        "alpha": 0.1,
    }
    text = pages.render_page("warning", data)
    assert "| `probe` | 2/4 | 1/2 |" in text
    assert "| 0 | 0.050 → 0.250 | 5.0x | +20.0 | 0.50 → 0.40 |" in text
