"""Provenance: sha256 checked against the ``sha256sum`` tool (GNU coreutils) where present and
``hashlib`` otherwise; the image digest is independent of order and location; the git commit
is the one ``git rev-parse`` reports; missing inputs are all listed."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from study.errors import StudyError
from study.provenance import collect_provenance, images_digest


def _sha(path: Path) -> str:
    if shutil.which("sha256sum"):
        return subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True).stdout.split()[0]
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def study_files(tmp_path):
    (tmp_path / "images" / "sub").mkdir(parents=True)
    imgs = []
    for i, name in enumerate(["a.jpg", "b.jpg", "sub/c.jpg"]):
        p = tmp_path / "images" / name
        p.write_bytes(bytes([i]) * (100 + i))
        imgs.append(p)
    for name in ("manifest.csv", "annotations.json", "reference.csv", "protocol.yaml", "w.pt"):
        (tmp_path / name).write_text(f"content of {name}\n")
    return tmp_path, imgs


def test_provenance_hashes_every_input(study_files):
    d, imgs = study_files
    prov = collect_provenance(
        config={"study": "x"}, protocol_path=d / "protocol.yaml",
        inputs={"manifest": d / "manifest.csv", "annotations": d / "annotations.json",
                "reference": d / "reference.csv", "readings": None},
        image_paths=imgs, models=[{"model": "m1", "backend": "torchvision", "weights": d / "w.pt"}],
        repo_dir=None).model_dump()
    assert prov["inputs"]["manifest"]["sha256"] == _sha(d / "manifest.csv")
    assert prov["inputs"]["readings"] is None
    assert prov["protocol"]["sha256"] == _sha(d / "protocol.yaml")
    assert prov["models"]["m1"]["sha256"] == _sha(d / "w.pt")
    assert prov["models"]["m1"]["backend_version"].startswith("torch ")
    lines = sorted(f"{_sha(p)}  {p.relative_to(d / 'images').as_posix()}\n" for p in imgs)
    assert prov["images_digest"]["sha256"] == hashlib.sha256("".join(lines).encode()).hexdigest()
    assert prov["images_digest"]["n_images"] == 3
    assert prov["git_commit"] is None and prov["config"] == {"study": "x"}
    assert prov["software"]["libraries"]["numpy"]


def test_images_digest_ignores_order_and_location(study_files, tmp_path_factory):
    d, imgs = study_files
    other = tmp_path_factory.mktemp("elsewhere")
    shutil.copytree(d / "images", other / "images")
    moved = [other / "images" / p.relative_to(d / "images") for p in imgs]
    assert images_digest(imgs) == images_digest(list(reversed(moved)))
    (other / "images" / "a.jpg").write_bytes(b"changed")
    assert images_digest(imgs).sha256 != images_digest(moved).sha256


def test_git_commit_of_repository(tmp_path, study_files):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    d, imgs = study_files
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e",
           "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = lambda *a: subprocess.run(["git", "-C", str(repo), *a], check=True, capture_output=True, text=True, env=env)  # noqa: E731
    run("init", "-q")
    (repo / "f.txt").write_text("x")
    run("add", "f.txt")
    run("commit", "-q", "-m", "c")
    head = run("rev-parse", "HEAD").stdout.strip()
    prov = collect_provenance(config={}, protocol_path=d / "protocol.yaml", inputs={}, image_paths=[], models=[],
                              repo_dir=repo)
    assert prov.git_commit == head and prov.git_dirty is False
    (repo / "f.txt").write_text("y")
    assert collect_provenance(config={}, protocol_path=d / "protocol.yaml", inputs={}, image_paths=[], models=[],
                              repo_dir=repo).git_dirty is True


def test_missing_files_are_all_listed(study_files):
    d, imgs = study_files
    with pytest.raises(StudyError) as e:
        collect_provenance(config={}, protocol_path=d / "nope.yaml", inputs={"manifest": d / "gone.csv"},
                           image_paths=imgs + [d / "images" / "lost.jpg"],
                           models=[{"id": "m", "backend": "onnx", "file": d / "m.onnx"}], repo_dir=None)
    msg = str(e.value)
    for part in ("nope.yaml", "gone.csv", "lost.jpg", "m.onnx"):
        assert part in msg
    assert len(e.value.problems) == 4


def test_images_digest_reuses_intakes_hashes_without_reading_the_images(study_files, monkeypatch):
    """collect passes intake's image_sha256 (probe_image hashes the bytes it read): the digest is the
    same as hashing every image again (checked against sha256sum), and no image is read twice."""
    from study import provenance
    from study.cohort.images import probe_image

    d, imgs = study_files
    expected = images_digest(imgs)
    known = {str(p): probe_image(p)["image_sha256"] for p in imgs}
    assert known == {str(p): _sha(p) for p in imgs}
    real = provenance.sha256_file

    def no_images(path):
        assert Path(path).resolve() not in {p.resolve() for p in imgs}, f"{path} hashed again"
        return real(path)

    monkeypatch.setattr(provenance, "sha256_file", no_images)
    assert images_digest(imgs, known=known) == expected
    prov = collect_provenance(config={}, protocol_path=d / "protocol.yaml", inputs={"manifest": d / "manifest.csv"},
                              image_paths=imgs, models=[], repo_dir=None, image_hashes=known)
    assert prov.images_digest == expected
    # an image intake could not hash (empty hash) is hashed here
    monkeypatch.setattr(provenance, "sha256_file", real)
    assert images_digest(imgs, known={**known, str(imgs[0]): ""}) == expected
