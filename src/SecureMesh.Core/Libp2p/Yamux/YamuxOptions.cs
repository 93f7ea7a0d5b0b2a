namespace SecureMesh.Core.Libp2p.Yamux;

/// <summary>Limits and timings of a <see cref="YamuxSession"/>. The defaults suit a libp2p connection.</summary>
public sealed class YamuxOptions
{
    /// <summary>The window every stream starts with in each direction (fixed by the spec): 256 KiB.</summary>
    public const uint InitialWindow = 256 * 1024;

    /// <summary>Open streams (both directions) at most; a stream the peer opens beyond it is reset at once. Default 256.</summary>
    public int MaxStreams { get; init; } = 256;

    /// <summary>The largest receive window one stream may grow to (auto-tuning), and so its buffered bytes at most. Default 16 MiB.</summary>
    public uint MaxStreamWindow { get; init; } = 16 * 1024 * 1024;

    /// <summary>
    /// The sum of all streams' receive windows at most, and so the bytes one connection can make us buffer. Every one
    /// of <see cref="MaxStreams"/> streams is guaranteed <see cref="InitialWindow"/>; windows grow only within what is
    /// left. Default 128 MiB.
    /// </summary>
    public long MaxConnectionReceiveWindow { get; init; } = 128L * 1024 * 1024;

    /// <summary>Whether receive windows grow with the measured round-trip time and throughput (rust-libp2p#4970). Default true.</summary>
    public bool AutoTuneWindows { get; init; } = true;

    /// <summary>Streams we open that the peer has not acknowledged yet, at most (the spec's ACK backlog); opening more waits. Default 256.</summary>
    public int AckBacklog { get; init; } = 256;

    /// <summary>How often the session pings the peer, to measure the round-trip time and find a dead peer. Default 15 s; <see cref="Timeout.InfiniteTimeSpan"/> turns it off.</summary>
    public TimeSpan KeepAliveInterval { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>A keep-alive ping unanswered for this long ends the session (it also catches a peer that stops reading). Default 30 s.</summary>
    public TimeSpan KeepAliveTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long closing waits for the go-away and queued frames to be written before dropping the connection. Default 5 s.</summary>
    public TimeSpan CloseTimeout { get; init; } = TimeSpan.FromSeconds(5);

    internal long GrowthBudget => MaxConnectionReceiveWindow - ((long)MaxStreams * InitialWindow);

    internal void Validate()
    {
        if (MaxStreams < 1 || AckBacklog < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxStreams), "MaxStreams and AckBacklog must be at least 1");
        }
        if (MaxStreamWindow < InitialWindow)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxStreamWindow), "MaxStreamWindow must be at least the initial 256 KiB");
        }
        if (GrowthBudget < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxConnectionReceiveWindow), "MaxConnectionReceiveWindow must hold MaxStreams initial windows");
        }
        if (KeepAliveTimeout <= TimeSpan.Zero || CloseTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(KeepAliveTimeout), "timeouts must be positive");
        }
    }
}
