namespace SecureMesh.Node;

/// <summary>
/// Gives back to the system the memory a burst of work leaves behind, once the node has gone quiet. The workstation GC
/// sizes its youngest generation from the CPU cache (here 32 MB of L3: a 16 MB budget) and keeps that much committed and
/// dirty after a collection, dead objects and all, until the next one: an idle node that has just accepted a thousand
/// connections or finished a download holds ~16 MB it will not use (the <c>GCgen0size</c> setting that would shrink the
/// budget is an environment variable only). Checked every <see cref="Interval"/>: when the process allocated less than
/// <see cref="QuietBytes"/> in the last interval (idle: keep-alives only) but at least <see cref="WorthBytes"/> since the
/// last trim, one full compacting collection that decommits what it frees (<see cref="GCCollectionMode.Aggressive"/>,
/// made for an application going idle) runs. A busy node (a transfer, a burst of handshakes) is never interrupted, and an
/// idle one trims once per <see cref="WorthBytes"/> allocated, not on every tick.
/// </summary>
internal sealed class IdleMemoryTrimmer
{
    /// <summary>
    /// How often the allocation counter is read (a cheap read: a check costs nothing when there is nothing to do). Four
    /// times a second, so a burst's garbage goes back within about half a second of its end: checked every 5 s it stayed
    /// 5-10 s (a node that had just accepted 1,000 connections held 106-110 MB for ~7 s before its first trim brought it
    /// to ~91), every 500 ms it still stayed 1-2 s.
    /// </summary>
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// Allocated in one interval below this (1.5 MB a second; 0.4 before session 8), the node is quiet: 1,000 idle
    /// sessions' keep-alives allocate ~0.3 MB a second, a transfer or a burst of handshakes tens of MB. A node working
    /// steadily just below it trims at most every <see cref="WorthBytes"/> / 1.5 MB ≈ 3 s, ~30 ms each.
    /// </summary>
    public const long QuietBytes = 384L << 10;

    /// <summary>
    /// Allocated since the last trim below this, there is too little to give back for a full collection to pay. A quarter
    /// of the young generation's budget: the idle node with 1,000 sessions (~0.3 MB/s) trims about every 14 s (~30 ms of
    /// CPU each, 0.2% of a core) and its resident set swings by ~4 MB between trims, not ~9 (with 8 MB: 91 → 100 MB).
    /// </summary>
    public const long WorthBytes = 4L << 20;

    private readonly Func<long> _allocated;
    private readonly Action _trim;
    private long _lastCheck;
    private long _lastTrim;

    /// <summary>A trimmer over an allocation counter (bytes allocated so far) and the trim itself; both seams for tests.</summary>
    public IdleMemoryTrimmer(Func<long> allocated, Action trim)
    {
        _allocated = allocated;
        _trim = trim;
        _lastCheck = _lastTrim = allocated();
    }

    /// <summary>How many times it has trimmed.</summary>
    public int Trims { get; private set; }

    /// <summary>One check (called every <see cref="Interval"/>); true when it trimmed.</summary>
    public bool Check()
    {
        var now = _allocated();
        var quiet = now - _lastCheck < QuietBytes;
        _lastCheck = now;
        if (!quiet || now - _lastTrim < WorthBytes)
        {
            return false;
        }
        _trim();
        Trims++;
        // The collection's own allocations do not count towards the next trim.
        _lastCheck = _lastTrim = _allocated();
        return true;
    }

    /// <summary>Checks every <see cref="Interval"/> on <paramref name="time"/> until <paramref name="cancellationToken"/> is cancelled.</summary>
    public async Task RunAsync(TimeProvider time, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        // Stopped by disposing the timer, without a cancellation exception (TimerStop).
        using var stop = timer.StopOn(cancellationToken);
        while (await timer.WaitForNextTickAsync().ConfigureAwait(false))
        {
            Check();
        }
    }

    /// <summary>The trimmer of this process: the runtime's allocation counter and an aggressive full collection.</summary>
    public static IdleMemoryTrimmer ForProcess() => new(
        () => GC.GetTotalAllocatedBytes(precise: false),
        () => GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true));
}
