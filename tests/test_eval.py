import csv, json, os, subprocess, sys
import pytest, torch
from conftest import run_cli
from farmer import preset
from farmer.data import load_dataset, open_dataset, dequantize_uniform
from farmer.classifier import load_classifier, accuracy
from farmer.eval import sample_metrics, class_log_likelihoods, COLUMNS
from farmer.train import train
from farmer.runs import heldout_bpd, heldout_bpds, load_run_model


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp('runs') / 'r'
    summary, _ = train(preset('digits-small', steps=30, eval_every=15, batch_size=64), out, progress=False)
    return out, summary


def test_shipped_classifiers_accuracy():
    for ds, floor in (('digits', 0.97), ('photo-patches', 0.95)):
        net, meta = load_classifier(ds)
        xt, yt = load_dataset(ds, 'test')
        acc = accuracy(net, xt, yt)
        assert acc >= floor and abs(acc - meta['test_accuracy']) < 1e-6, (ds, acc)


def test_fid_self_zero_and_monotone_in_noise():
    xt, _ = load_dataset('photo-patches', 'test')
    g = torch.Generator().manual_seed(1)
    vals = []
    for s in (0.0, 0.03, 0.1, 0.3):
        fake = (xt.float() + s * 255 * torch.randn(xt.shape, generator=g)).clamp(0, 255).to(torch.uint8)
        vals.append(sample_metrics(fake, xt, 'farmer-photo-patches'))
    fids = [v['fid'] for v in vals]
    assert abs(fids[0]) < 1e-3 and fids[0] < fids[1] < fids[2] < fids[3], fids
    assert vals[0]['precision'] > 0.99 and vals[0]['recall'] > 0.99


@pytest.mark.slow
def test_offline_extractor_needs_no_network(tmp_path):
    code = (
        "import torch; from farmer.data import load_dataset; from farmer.eval import sample_metrics; "
        "x = load_dataset('digits', 'test')[0]; print(round(sample_metrics(x[:100], x[100:], 'farmer-digits')['fid'], 3))"
    )
    env = dict(
        os.environ, TORCH_HOME=str(tmp_path / 'hub'), HTTPS_PROXY='http://127.0.0.1:9', HTTP_PROXY='http://127.0.0.1:9'
    )
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-1500:]
    assert float(r.stdout.strip()) > 0 and not (tmp_path / 'hub').exists()  # nothing downloaded or cached


def test_missing_inception_weights_message(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    x = load_dataset('digits', 'test')[0][:20]
    with pytest.raises(
        ValueError, match='InceptionV3 weights not found at .*pass --allow-download, or use the offline extractor'
    ):
        sample_metrics(x, x, 'inception-v3-compat')


def test_bpd_and_class_likelihoods_agree_with_training(run_dir):
    run, summary = run_dir
    model = load_run_model(run, 'best')
    test, val = open_dataset('digits', 'test'), open_dataset('digits', 'val', val_images=300)
    bpd, se = heldout_bpd(model, test)
    assert abs(bpd - summary['test_bpd']) < 1e-5 and se > 0
    per_test = heldout_bpds(model, test)  # the summary's median and worst test image are this run's own
    assert abs(per_test.median().item() - summary['test_bpd_median']) < 1e-5
    assert abs(per_test.max().item() - summary['test_bpd_max']) < 1e-5
    assert abs(heldout_bpd(model, val)[0] - summary['best_val_bpd']) < 1e-5
    per_image = heldout_bpds(model, val)
    assert per_image.shape == (300,) and abs(per_image.mean().item() - summary['best_val_bpd']) < 1e-5
    torch.testing.assert_close(heldout_bpds(model, val, batch=7), per_image)  # each image's noise is its own
    xt, yt = load_dataset('digits', 'test')
    ll = class_log_likelihoods(model, xt[:50])
    x = dequantize_uniform(xt[:50], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        nll = model(x, yt[:50])['nll']
    assert ll.shape == (50, 10) and torch.allclose(ll[torch.arange(50), yt[:50]], -nll, atol=1e-3)


def _cli(*args):
    return run_cli('farmer.cli:eval_main', *args)


@pytest.mark.slow
def test_eval_cli_and_csv(run_dir, tmp_path):
    run, _ = run_dir
    csv_path = tmp_path / 'results.csv'
    for _ in range(2):
        rc, err, out = _cli('--run', str(run), '--guidance', 'none,resample', '--n', '60', '--csv', str(csv_path))
        assert rc == 0, err
    rows = list(csv.DictReader(open(csv_path)))
    assert len(rows) == 4 and tuple(rows[0]) == COLUMNS and rows[1]['guidance'] == 'resample w=2.0'
    assert all(0 <= float(r['consistency']) <= 1 and float(r['fid']) > 0 for r in rows)
    assert json.loads((run / 'eval-test.json').read_text())[0]['dataset'] == 'digits'
    for args, msg in (
        (('--run', str(tmp_path / 'nope')), 'holds no best.safetensors'),
        (('--run', str(run), '--guidance', 'cfg'), "unknown guidance mode 'cfg'"),
        (('--run', str(run), '--n', '1'), '--n must be at least 2'),
    ):
        rc, err, _ = _cli(*args)
        assert rc == 2 and len(err) == 1 and msg in err[0], (args, err)
