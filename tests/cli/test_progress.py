"""The CLI's progress bars: quiet lines off a terminal, tqdm on one."""

from __future__ import annotations

from napari_cryodenoise.cli._progress import FileBar, StderrProgress


def test_stderr_progress(tmp_path):
    import io

    stream = io.StringIO()
    bar = StderrProgress("denoise", stream=stream, interval=3600)
    bar(0, 4)
    bar(1, 4)  # not a terminal: rate-limited, nothing until the end
    bar.message("retrying x")
    bar(4, 4)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("denoise [") and "0/4" in lines[0]
    assert lines[1] == "retrying x"
    assert "4/4" in lines[2] and len(lines) == 3


class _Terminal:
    """A text stream that says it is a terminal."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True


def test_stderr_progress_on_a_terminal_is_a_tqdm_bar():
    stream = _Terminal()
    bar = StderrProgress("denoise", stream=stream)
    bar(0, 4)
    bar(2, 4)
    bar.message("retrying x")
    bar(4, 4)
    assert "retrying x\n" in stream.text
    assert "4/4" in stream.text and "denoise" in stream.text
    assert "\r" in stream.text  # redrawn in place


def test_file_bar_draws_nothing_off_a_terminal(capsys):
    bar = FileBar("[1/1] a.mrc", enabled=False)
    bar(1, 2)
    bar(2, 2)
    bar.close()
    assert capsys.readouterr().err == ""
