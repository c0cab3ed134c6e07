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


def test_postfix_updates_wait_for_the_next_redraw(monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr("sys.stderr", log)
    with progress_bar(total=1000, file=log, desc="steps") as bar:
        for i in range(1000):
            bar.set_postfix(loss=f"{1 / (i + 1):.3f}", refresh=False)  # as the trainers do
            bar.update(1)
    assert log.getvalue().count("steps") < 10  # not one redraw per step
