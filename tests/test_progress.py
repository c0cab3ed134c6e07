import io

from nse_hw.progress import LOG_INTERVAL_S, format_duration, progress_bar, time_left


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


def test_time_left_is_this_process_pace_times_what_is_left():
    assert time_left(60.0, 3, 1, 10) == 210.0  # 2 epochs in 60 s: 30 s each, 7 to go
    assert time_left(60.0, 1, 1, 10) is None  # resumed at epoch 1, none done here yet: no pace
    assert time_left(60.0, 10, 0, 10) == 0.0


def test_durations_round_to_what_a_person_plans_by():
    assert [format_duration(s) for s in (0.4, 40, 89, 719, 3600, 3900)] == [
        "0 s", "40 s", "1 min", "12 min", "1 h 00 min", "1 h 05 min"]
