import io

from nse_hw.progress import LOG_INTERVAL_S, progress_bar


def test_bars_into_a_log_redraw_rarely(monkeypatch):
    log = io.StringIO()  # not a terminal, like stderr redirected to a file
    monkeypatch.setattr("sys.stderr", log)
    with progress_bar(range(3), file=log) as bar:
        assert bar.mininterval == LOG_INTERVAL_S
        assert list(bar) == [0, 1, 2]
    with progress_bar(range(3), file=log, mininterval=1.0) as bar:
        assert bar.mininterval == 1.0  # an explicit choice wins
