import subprocess, sys, textwrap
import numpy as np, pytest, torch
from farmer.data import (
    load_dataset,
    open_dataset,
    open_splits,
    patchify,
    unpatchify,
    to_model_space,
    to_uint8,
    bin_width,
    sigma_schedule,
    dequantize_gaussian,
    dequantize_uniform,
)


def test_patchify_round_trip():
    x = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    for p in (1, 2, 3, 4, 6):
        t = patchify(x, p)
        assert t.shape == (2, (12 // p) ** 2, 3 * p * p)
        assert torch.equal(unpatchify(t, p, 3), x)


def test_digits_split_fixed_and_disjoint():
    xtr, ytr = load_dataset('digits', 'train')
    xte, yte = load_dataset('digits', 'test')
    assert xtr.shape == (1500, 1, 8, 8) and xte.shape == (297, 1, 8, 8) and xtr.dtype == torch.uint8
    assert int(xtr.max()) == 255 and int(xtr.min()) == 0 and set(ytr.unique().tolist()) == set(range(10))
    from sklearn.datasets import load_digits

    raw = np.round(load_digits().images * 255 / 16).astype(np.uint8)
    both = torch.cat([xtr, xte]).flatten(1)
    assert sorted(map(bytes, both.numpy())) == sorted(map(bytes, raw.reshape(len(raw), -1)))  # a partition of all 1,797
    assert torch.equal(load_dataset('digits', 'test')[0], xte)  # deterministic


def test_validation_split_is_a_fixed_partition_of_the_training_images():
    s = open_splits('digits', val_images=300)
    assert (len(s['train']), len(s['val']), len(s['test'])) == (1200, 300, 297)
    assert torch.equal(torch.cat([s['train'].index, s['val'].index]).sort().values, torch.arange(1500))
    xv, yv = load_dataset('digits', 'val', val_images=300)
    assert torch.equal(xv, s['val'].batch(range(300))[0]) and torch.equal(yv, s['val'].y)
    assert torch.equal(
        open_dataset('digits', 'train', val_images=300).index, s['train'].index
    )  # the same split every time


def test_photo_patches():
    x, y = load_dataset('photo-patches')
    xt, yt = load_dataset('photo-patches', 'test')
    assert x.shape[1:] == (3, 32, 32) and x.dtype == torch.uint8 and len(y.unique()) == 6
    assert 0.1 < len(xt) / (len(x) + len(xt)) < 0.2


def test_model_space_convention():
    k = torch.arange(256).to(torch.uint8)
    for vr in ((-1.0, 1.0), (0.0, 1.0), (-3.0, 5.0)):
        u = torch.rand(256)
        assert torch.equal(to_uint8(to_model_space(k, vr, u), vr), k)
        x0, x1 = to_model_space(k[:1], vr, 0.0), to_model_space(k[:1], vr, 1.0)
        assert abs((x1 - x0).item() - bin_width(vr)) < 1e-6
    assert bin_width() == 1 / 128


def test_dequantisation():
    k = torch.randint(0, 256, (20000,), dtype=torch.uint8)
    assert torch.equal(to_uint8(dequantize_uniform(k)), k)
    noise = dequantize_gaussian(k, 0.1) - to_model_space(k)
    assert abs(noise.std().item() - 0.1) < 0.005
    noise01 = dequantize_gaussian(k, 0.1, (0.0, 1.0)) - to_model_space(k, (0.0, 1.0))
    assert abs(noise01.std().item() - 0.05) < 0.003  # sigma is on the [-1, 1] scale
    assert sigma_schedule(0, 10) == 0.1 and abs(sigma_schedule(10, 10) - 0.005) < 1e-12
    s = [sigma_schedule(i, 100) for i in range(101)]
    assert all(a >= b for a, b in zip(s, s[1:]))


def test_bad_dataset_input():
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        load_dataset('nope')
    with pytest.raises(ValueError, match="split must be one of train, val, test"):
        load_dataset('digits', 'valid')
    with pytest.raises(ValueError, match="the validation split needs val_images >= 1"):
        load_dataset('digits', 'val')
    with pytest.raises(ValueError, match="val_images must be in 0..1499"):
        load_dataset('digits', 'train', val_images=1500)
    with pytest.raises(ValueError, match='pass download=True'):
        load_dataset('cifar10', root='/nonexistent/dir')
    with pytest.raises(ValueError, match='is not a directory'):
        open_dataset('folder', root='/nonexistent/dir', image_size=8)


def test_folder_dataset(tmp_path):
    from PIL import Image

    for c in ('cat', 'dog'):
        (tmp_path / c).mkdir()
        for i in range(2):
            Image.fromarray(np.full((10, 12, 3), 40 * i, np.uint8)).save(tmp_path / c / f'{i}.png')
    ds = open_dataset('folder', root=str(tmp_path), image_size=8)
    x, y = ds.batch(range(4))
    assert ds.streamed and x.shape == (4, 3, 8, 8) and y.tolist() == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="is streamed"):
        load_dataset('folder', root=str(tmp_path), image_size=8)


def _run(code: str) -> str:
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], capture_output=True, text=True).stdout.strip()


@pytest.mark.slow
def test_torchvision_shim_only_when_needed():
    "The placeholder schemas are defined exactly when a plain `import torchvision` fails with the nms error."
    plain = _run("""
        try:
            import torchvision; print('ok')
        except RuntimeError as e: print('nms' if 'torchvision::nms does not exist' in str(e) else 'other')""")
    assert plain in ('ok', 'nms')
    shim = _run("""
        from farmer.data import import_torchvision, torchvision_shim_applied
        tv = import_torchvision(); import torchvision.datasets, torchvision.transforms
        print(torchvision_shim_applied())""")
    assert shim == str(plain == 'nms')


def _write_idx(path, a, gz=False):
    import gzip, struct

    raw = b'\0\0\x08' + bytes([a.ndim]) + b''.join(struct.pack('>I', n) for n in a.shape) + a.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def test_fashion_mnist_loader_on_tiny_idx_files(tmp_path, monkeypatch):
    "The IDX reader on files written here: plain or gzipped whatever their names say, and every way a copy goes wrong."
    monkeypatch.delenv('FARMER_DATA', raising=False)
    raw = tmp_path / 'FashionMNIST' / 'raw'
    raw.mkdir(parents=True)
    imgs, labs = np.random.default_rng(0).integers(0, 256, (7, 28, 28)), np.array([3, 1, 4, 1, 5, 9, 2])
    _write_idx(raw / 'train-images-idx3-ubyte', imgs, gz=True)  # gzipped bytes under the unzipped name
    _write_idx(raw / 'train-labels-idx1-ubyte.gz', labs, gz=False)  # plain bytes under the .gz name
    x, y = load_dataset('fashion-mnist', 'train', root=tmp_path)
    assert (
        x.shape == (7, 1, 28, 28)
        and x.dtype == torch.uint8
        and torch.equal(x[:, 0], torch.as_tensor(imgs, dtype=torch.uint8))
    )
    assert y.tolist() == labs.tolist()
    monkeypatch.setenv('FARMER_DATA', str(tmp_path))  # the data root from the environment
    assert torch.equal(load_dataset('fashion-mnist', 'train')[0], x)
    with pytest.raises(ValueError, match=r't10k-images-idx3-ubyte\[\.gz\] is missing; pass --download'):
        load_dataset('fashion-mnist', 'test', root=tmp_path)
    _write_idx(raw / 'train-labels-idx1-ubyte.gz', labs[:5])
    with pytest.raises(ValueError, match=r'\(\[7, 28, 28\]\) and .* \(\[5\]\) do not match'):
        load_dataset('fashion-mnist', 'train', root=tmp_path)
    (raw / 'train-labels-idx1-ubyte.gz').write_bytes((raw / 'train-labels-idx1-ubyte.gz').read_bytes()[:-1])
    with pytest.raises(ValueError, match='a partial file'):
        load_dataset('fashion-mnist', 'train', root=tmp_path)
    (raw / 'train-images-idx3-ubyte').write_bytes(b'\x1f\x8b' + b'junk' * 10)
    with pytest.raises(ValueError, match='damaged or partial gzip file'):
        load_dataset('fashion-mnist', 'train', root=tmp_path)
    (raw / 'train-images-idx3-ubyte').write_bytes(b'<html>not found</html>')
    with pytest.raises(ValueError, match='is not a uint8 IDX file'):
        load_dataset('fashion-mnist', 'train', root=tmp_path)


def test_fashion_mnist_real_data():
    "The real data where this machine has it under the data root ($FARMER_DATA); skipped elsewhere."
    from farmer.data import data_root

    if not (data_root() / 'FashionMNIST' / 'raw').is_dir():
        pytest.skip('no Fashion-MNIST under the data root (set FARMER_DATA)')
    x, y = load_dataset('fashion-mnist', 'train')
    xt, yt = load_dataset('fashion-mnist', 'test')
    assert x.shape == (60000, 1, 28, 28) and xt.shape == (10000, 1, 28, 28) and x.dtype == torch.uint8
    assert sorted(y.unique().tolist()) == list(range(10)) and int(x.max()) == 255 and int(x.min()) == 0
    assert yt.bincount().sum() == 10000 and 900 < yt.bincount().min() and yt.bincount().max() < 1100
