namespace SecureMesh.Core;

/// <summary>
/// Bounds how many lines one kind of warning writes: at most <see cref="Burst"/> per <see cref="Window"/>; the rest are
/// counted and reported as one line in the next window. A flood of bad connections therefore costs a few log lines a
/// window instead of one per connection. Thread-safe.
/// </summary>
public sealed class LogThrottle
{
    private readonly Lock _gate = new();
    private readonly TimeProvider _time;
    private long _windowStart;
    private int _written;
    private long _suppressed;

    /// <summary>A throttle allowing <paramref name="burst"/> lines per <paramref name="window"/> (default 20 per 10 s).</summary>
    public LogThrottle(TimeProvider? time = null, int burst = 20, TimeSpan? window = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(burst, 1);
        _time = time ?? TimeProvider.System;
        Burst = burst;
        Window = window ?? TimeSpan.FromSeconds(10);
        _windowStart = _time.GetTimestamp();
    }

    /// <summary>Lines allowed per window.</summary>
    public int Burst { get; }

    /// <summary>The window length.</summary>
    public TimeSpan Window { get; }

    /// <summary>
    /// True when this line may be written. <paramref name="suppressedBefore"/> is how many lines the previous window
    /// dropped (report it once, when above zero); it is zero otherwise.
    /// </summary>
    public bool TryWrite(out long suppressedBefore)
    {
        lock (_gate)
        {
            suppressedBefore = 0;
            if (_time.GetElapsedTime(_windowStart) >= Window)
            {
                _windowStart = _time.GetTimestamp();
                _written = 0;
                suppressedBefore = _suppressed;
                _suppressed = 0;
            }
            if (_written < Burst)
            {
                _written++;
                return true;
            }
            _suppressed++;
            return false;
        }
    }
}
