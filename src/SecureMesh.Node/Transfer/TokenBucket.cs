namespace SecureMesh.Node.Transfer;

/// <summary>
/// A token bucket for one peer's uploads: each send takes its size in tokens, refilled at the configured rate with a
/// quarter second of burst. Tokens may go negative (a chunk is never split), and the sender waits until the debt is paid,
/// so concurrent senders queue fairly and the long-run rate is the limit.
/// </summary>
internal sealed class TokenBucket
{
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private double _tokens;
    private long _stamp;

    public TokenBucket(TimeProvider time)
    {
        _time = time;
        _stamp = time.GetTimestamp();
    }

    /// <summary>Takes <paramref name="bytes"/> tokens at <paramref name="ratePerSecond"/> (0 or less: unlimited), waiting as needed.</summary>
    public ValueTask TakeAsync(long bytes, long ratePerSecond, CancellationToken cancellationToken)
    {
        if (ratePerSecond <= 0)
        {
            return ValueTask.CompletedTask;
        }
        TimeSpan wait;
        lock (_gate)
        {
            var now = _time.GetTimestamp();
            var burst = Math.Max(ratePerSecond / 4.0, 1);
            _tokens = Math.Min(burst, _tokens + (_time.GetElapsedTime(_stamp, now).TotalSeconds * ratePerSecond));
            _stamp = now;
            _tokens -= bytes;
            wait = _tokens >= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(-_tokens / ratePerSecond);
        }
        return wait == TimeSpan.Zero ? ValueTask.CompletedTask : new ValueTask(Task.Delay(wait, _time, cancellationToken));
    }
}
