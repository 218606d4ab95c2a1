import hashlib
import io
import tarfile

import numpy as np
import pytest
import soundfile as sf

from tokbench.data import DatasetError
from tokbench.data.librispeech import librispeech_test_clean
from tokbench.io.download import DownloadError, download, safe_extract


class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes, status: int):
        super().__init__(data)
        self.status = status


def test_download_resumes_with_range_and_checks_md5(tmp_path):
    payload = bytes(range(256)) * 1000
    md5 = hashlib.md5(payload).hexdigest()
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(payload[:1000])  # an interrupted earlier download
    seen = []

    def opener(request, timeout):
        seen.append(request.headers.get("Range"))
        return FakeResponse(payload[1000:], 206)

    assert download("https://x/f.bin", dest, md5=md5, size=len(payload), opener=opener) == dest
    assert seen == ["bytes=1000-"] and dest.read_bytes() == payload
    # Already there and verified: no network at all.
    download("https://x/f.bin", dest, md5=md5, size=len(payload), opener=None)


def test_download_rejects_a_wrong_checksum(tmp_path):
    def opener(request, timeout):
        return FakeResponse(b"tampered", 200)

    with pytest.raises(DownloadError, match="does not match"):
        download("https://x/f", tmp_path / "f", md5="0" * 32, opener=opener)
    assert not (tmp_path / "f").exists() and not (tmp_path / "f.part").exists()


def test_download_failure_says_what_to_do(tmp_path):
    def opener(request, timeout):
        raise OSError("network unreachable")

    with pytest.raises(DownloadError, match="place it at"):
        download("https://x/f", tmp_path / "f", opener=opener)


def _tar(path, files: dict[str, bytes], extra=None):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info)


@pytest.mark.parametrize("evil", ["../escape.txt", "/abs/escape.txt", "a/../../escape.txt"])
def test_safe_extract_refuses_path_traversal(tmp_path, evil):
    _tar(tmp_path / "e.tar.gz", {"ok.txt": b"ok", evil: b"bad"})
    with pytest.raises(DownloadError, match="refusing"):
        safe_extract(tmp_path / "e.tar.gz", tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "out").exists()


def test_safe_extract_refuses_links(tmp_path):
    link = tarfile.TarInfo("link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    _tar(tmp_path / "l.tar.gz", {"ok.txt": b"ok"}, [link])
    with pytest.raises(DownloadError, match="links"):
        safe_extract(tmp_path / "l.tar.gz", tmp_path / "out")


def test_safe_extract_never_deletes_a_folder_it_did_not_make(tmp_path):
    _tar(tmp_path / "a.tar.gz", {"new.txt": b"new"})
    mine = tmp_path / "out"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(DownloadError, match="not made by tokbench"):
        safe_extract(tmp_path / "a.tar.gz", mine)
    assert (mine / "thesis.tex").read_text() == "years of work"
    (tmp_path / "out.partial").mkdir()  # someone's folder where the staging folder would go
    (tmp_path / "out.partial" / "keep.txt").write_text("x")
    with pytest.raises(DownloadError, match="not made by tokbench"):
        safe_extract(tmp_path / "a.tar.gz", tmp_path / "out")
    assert (tmp_path / "out.partial" / "keep.txt").is_file()


def test_a_new_archive_is_extracted_again_despite_the_old_marker(tmp_path):
    import os

    archive = tmp_path / "a.tar.gz"
    _tar(archive, {"f.txt": b"first"})
    out = safe_extract(archive, tmp_path / "out")
    assert (out / "f.txt").read_bytes() == b"first"
    _tar(archive, {"f.txt": b"second, downloaded again after the advice"})
    os.utime(archive, ns=(1, 1))  # a different file at the same path
    out = safe_extract(archive, tmp_path / "out")
    assert (out / "f.txt").read_bytes().startswith(b"second")
    assert safe_extract(archive, tmp_path / "out") == out  # unchanged: reused


def test_resume_of_a_complete_part_with_unknown_size_survives_http_416(tmp_path):
    import urllib.error

    payload = b"complete already" * 100
    (tmp_path / "f.bin.part").write_bytes(payload)

    def opener(request, timeout):
        assert request.headers.get("Range") == f"bytes={len(payload)}-"
        raise urllib.error.HTTPError(request.full_url, 416, "Range Not Satisfiable", {}, None)

    dest = download("https://x/f.bin", tmp_path / "f.bin", md5=hashlib.md5(payload).hexdigest(),
                    opener=opener)
    assert dest.read_bytes() == payload


def _flac_bytes(seconds=0.3):
    buf = io.BytesIO()
    sf.write(buf, (0.1 * np.sin(np.arange(int(16000 * seconds)) / 5)).astype(np.float32), 16000,
             format="FLAC")
    return buf.getvalue()


def test_librispeech_loader_on_a_small_archive(tmp_path):
    files = {
        "LibriSpeech/test-clean/1089/134686/1089-134686-0000.flac": _flac_bytes(),
        "LibriSpeech/test-clean/1089/134686/1089-134686-0001.flac": _flac_bytes(),
        "LibriSpeech/test-clean/1089/134686/1089-134686.trans.txt":
            b"1089-134686-0000 HE HOPED THERE WOULD BE STEW\n1089-134686-0001 STUFF IT INTO YOU\n",
        "LibriSpeech/test-clean/121/121726/121-121726-0000.flac": _flac_bytes(),
        "LibriSpeech/test-clean/121/121726/121-121726.trans.txt": b"121-121726-0000 ALSO A POPULAR CONTRIVANCE\n",
    }
    archive = tmp_path / "src.tar.gz"
    _tar(archive, files)
    data = archive.read_bytes()
    root = tmp_path / "cache"
    ds = librispeech_test_clean(root, url=archive.as_uri(), md5=hashlib.md5(data).hexdigest(),
                                size=len(data), expected=3)
    assert len(ds) == 3 and ds.name == "librispeech-test-clean"
    by = ds.by_id()
    assert by["1089-134686-0000"].text == "HE HOPED THERE WOULD BE STEW"
    assert by["121-121726-0000"].speaker == "121"
    assert ds.load(by["1089-134686-0001"]).sample_rate == 16000
    # second open: no download (the archive URL is gone) and the same revision
    archive.unlink()
    again = librispeech_test_clean(root, url=archive.as_uri(), md5=None, size=None, expected=3)
    assert again.revision == ds.revision
    with pytest.raises(DatasetError, match="expected 2620"):
        librispeech_test_clean(root, url=archive.as_uri())


def test_train_clean_100_is_registered_with_its_published_checksum(tmp_path):
    from tokbench.data import librispeech as ls
    from tokbench.registry import datasets

    assert "librispeech-train-clean-100" in datasets
    assert ls.SPLITS["train-clean-100"].md5 == "2a93770f6d5c6c964bc36631d331a522"
    files = {"LibriSpeech/train-clean-100/19/198/19-198-0000.flac": _flac_bytes(),
             "LibriSpeech/train-clean-100/19/198/19-198.trans.txt": b"19-198-0000 NORTHANGER ABBEY\n"}
    _tar(tmp_path / "a.tar.gz", files)
    data = (tmp_path / "a.tar.gz").read_bytes()
    ds = ls.librispeech("train-clean-100", tmp_path / "root", url=(tmp_path / "a.tar.gz").as_uri(),
                        md5=hashlib.md5(data).hexdigest(), size=len(data), expected=1)
    assert ds.name == "librispeech-train-clean-100" and ds.utterances[0].speaker == "19"
    with pytest.raises(DatasetError, match="unknown LibriSpeech split"):
        ls.librispeech("dev-dirty")
