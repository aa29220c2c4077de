"The experiments' runner (record, resume, --max-new-runs) and the warm start's widening of a K = 1 checkpoint."

import json, subprocess, sys
import torch
from farmer.config import preset
from farmer.model import Farmer
from farmer.loop import make_optimizer, checkpoint_contents, load_full_state
from farmer.runtime import strip_prefix
from farmer.train import ensure_run
from experiments import Experiment, Run, ROOT, run_experiment, read_json, state
from experiments.warm_start import widen_checkpoint


def test_a_widened_checkpoint_is_the_same_density_and_takes_the_same_step():
    """K = 1 copied into K = 8 (no jitter) gives the same loss in fp64, and one AdamW step later still the same loss: the
    copies' Adam moments are scaled so that each moves as the single Gaussian does."""
    torch.manual_seed(0)
    c1, cK = preset('digits', K_I=1, d_I=None, steps=10), preset('digits', K_I=8, d_I=None, steps=10)
    m1 = Farmer(c1).double()
    opt1 = make_optimizer(m1, c1.recipe)
    x, y = torch.rand(8, 1, 8, 8, dtype=torch.float64) * 2 - 1, torch.randint(0, 10, (8,))
    for _ in range(3):
        m1(x, y)['loss'].backward()
        opt1.step()
        opt1.zero_grad()
    t, meta = checkpoint_contents(m1, opt1, dict(step=3, best_val_bpd=1.0, best_step=2), c1.to_dict())
    t = {k: v.clone() for k, v in t.items()}  # (the optimizer's own tensors otherwise)
    wide, wmeta = widen_checkpoint(t, meta, cK, jitter=0.0)
    assert 'best_val_bpd' not in wmeta['loop'] and wmeta['loop']['step'] == 3 and wmeta['config']['K_I'] == 8
    mK = Farmer(cK).double()
    optK = make_optimizer(mK, cK.recipe)
    load_full_state(mK, optK, strip_prefix(wide, 'model.'), wide)
    with torch.no_grad():
        assert torch.allclose(m1(x, y)['loss'], mK(x, y)['loss'], rtol=0, atol=1e-12)
    for m, o in ((m1, opt1), (mK, optK)):
        m(x, y)['loss'].backward()
        o.step()
    with torch.no_grad():
        assert torch.allclose(m1(x, y)['loss'], mK(x, y)['loss'], rtol=0, atol=1e-6)


def test_the_runner_records_resumes_and_stops_after_max_new_runs(tmp_path):
    "Two tiny digits runs: one per invocation with --max-new-runs 1, then nothing left to train; the record keeps both."
    cfgs = {f's{s}': preset('digits-small', steps=4, eval_every=2, warmup=1, seed=s) for s in (0, 1)}
    trained = []

    def run(key):
        def train(out, data_root):
            trained.append(key)
            ensure_run(cfgs[key], out, progress=False)
            return out

        return Run(key, cfgs[key], train)

    exp = Experiment(
        'tiny',
        'two short runs',
        grid=lambda: [run('s0'), run('s1')],
        keep=lambda out, r: dict(test_bpd=json.loads((out / 'summary.json').read_text())['test_bpd']),
        summarize=lambda rec: dict(n=len(rec)),
        figures=tmp_path,
    )
    runs = tmp_path / 'runs'
    run_experiment(exp, runs, None, max_new_runs=1)
    assert trained == ['s0'] and set(read_json(exp.record_path)) == {'s0'}
    assert [state(exp, r, read_json(exp.record_path), runs) for r in exp.grid()] == ['recorded', 'missing']
    run_experiment(exp, runs, None, max_new_runs=1)
    run_experiment(exp, runs, None, max_new_runs=1)  # nothing left: trains nothing
    assert trained == ['s0', 's1'] and read_json(exp.output_path) == dict(n=2)
    rec = read_json(exp.record_path)
    assert rec['s1']['config']['seed'] == 1 and rec['s1']['test_bpd'] > 0


def test_the_runner_command_line():
    "`python -m experiments list` names every experiment; an unknown name is one line, exit status not 0."
    py = lambda *a: subprocess.run([sys.executable, '-m', 'experiments', *a], capture_output=True, text=True, cwd=ROOT)
    out = py('list')
    assert out.returncode == 0 and 'warm_start' in out.stdout and 'k_sweep' in out.stdout, out.stderr
    bad = py('status', 'nope')
    assert bad.returncode != 0 and bad.stderr.strip().splitlines() == [
        "unknown experiment 'nope'; one of: warm_start, k_sweep"
    ]
