using SecureMesh.Core.Content;

namespace SecureMesh.Node.Transfer;

/// <summary>Where a download stands.</summary>
public enum DownloadState
{
    /// <summary>Fetching the manifest and the peers' chunk maps.</summary>
    Starting,
    /// <summary>Chunks are arriving.</summary>
    Downloading,
    /// <summary>Whole; the quarantine is checking it.</summary>
    Verifying,
    /// <summary>Released to the download folder.</summary>
    Released,
    /// <summary>Kept in quarantine (see the reason).</summary>
    Held,
    /// <summary>Stopped by an error; resumable.</summary>
    Failed,
    /// <summary>Cancelled; resumable.</summary>
    Cancelled,
}

/// <summary>A snapshot of a download's progress.</summary>
/// <param name="State">Where it stands.</param>
/// <param name="BytesDone">Verified bytes (resumed ones included).</param>
/// <param name="TotalBytes">File size (0 until the manifest is known).</param>
/// <param name="BytesPerSecond">Average rate of this run.</param>
/// <param name="Peers">Peers serving it now.</param>
/// <param name="ChunkRequests">Chunk requests sent in this run.</param>
public readonly record struct DownloadProgress(DownloadState State, long BytesDone, long TotalBytes, double BytesPerSecond, int Peers, long ChunkRequests);

/// <summary>The outcome of a finished download.</summary>
/// <param name="State">Released, Held, Failed or Cancelled.</param>
/// <param name="Reason">Why it was held or failed.</param>
/// <param name="Path">The released file, or the held file in quarantine.</param>
/// <param name="QuarantineId">The quarantine item.</param>
public sealed record DownloadResult(DownloadState State, string? Reason, string? Path, long? QuarantineId);

/// <summary>A running download: progress, cancellation and its outcome.</summary>
public sealed class DownloadHandle
{
    private readonly CancellationTokenSource _cancel = new();
    private readonly TimeProvider _time;
    private long _bytesDone;
    private long _bytesThisRun;
    private long _requests;
    private long _startStamp;
    private long _endStamp;
    private int _peers;
    private long _total;
    private volatile DownloadState _state = DownloadState.Starting;

    internal DownloadHandle(ContentId id, string? outDir, TimeProvider time)
    {
        ContentId = id;
        OutDir = outDir;
        _time = time;
    }

    /// <summary>The content being fetched.</summary>
    public ContentId ContentId { get; }

    /// <summary>Release folder override.</summary>
    public string? OutDir { get; }

    /// <summary>The announced name, once the manifest is known.</summary>
    public string? Name { get; internal set; }

    /// <summary>Chunks that were already verified when this run started (resumed, not fetched).</summary>
    public long ResumedChunks { get; internal set; }

    /// <summary>Completes with the outcome; never faults.</summary>
    public Task<DownloadResult> Completion { get; internal set; } = Task.FromResult(new DownloadResult(DownloadState.Failed, "not started", null, null));

    /// <summary>The current progress.</summary>
    public DownloadProgress Progress
    {
        get
        {
            var start = Interlocked.Read(ref _startStamp);
            var end = Interlocked.Read(ref _endStamp);
            var seconds = start == 0 ? 0 : (end == 0 ? _time.GetElapsedTime(start) : _time.GetElapsedTime(start, end)).TotalSeconds;
            var rate = seconds > 0.05 ? Interlocked.Read(ref _bytesThisRun) / seconds : 0;
            return new DownloadProgress(_state, Interlocked.Read(ref _bytesDone), Interlocked.Read(ref _total), rate, Volatile.Read(ref _peers),
                Interlocked.Read(ref _requests));
        }
    }

    /// <summary>Stops the download; verified chunks are kept for a later resume.</summary>
    public void Cancel()
    {
        try
        {
            _cancel.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    internal CancellationToken Token => _cancel.Token;

    internal DownloadState State
    {
        get => _state;
        set => _state = value;
    }

    internal void SetTotal(long total, long alreadyDone)
    {
        Interlocked.Exchange(ref _total, total);
        Interlocked.Exchange(ref _bytesDone, alreadyDone);
        Interlocked.Exchange(ref _startStamp, _time.GetTimestamp());
    }

    internal void AddBytes(long bytes)
    {
        Interlocked.Add(ref _bytesDone, bytes);
        Interlocked.Add(ref _bytesThisRun, bytes);
    }

    /// <summary>Freezes the rate: the last chunk has arrived.</summary>
    internal void MarkTransferDone() => Interlocked.CompareExchange(ref _endStamp, _time.GetTimestamp(), 0);

    internal void CountRequest() => Interlocked.Increment(ref _requests);

    internal void SetPeers(int peers) => Volatile.Write(ref _peers, peers);
}
