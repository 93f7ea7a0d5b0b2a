using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace SecureMesh.Core.Libp2p.Yamux;

/// <summary>
/// A yamux session (libp2p <c>/yamux/1.0.0</c>, hashicorp's spec) over one duplex byte stream, normally the Noise
/// secure channel. The client (the dialer) opens odd stream IDs, the server even ones. One read loop parses frames;
/// one send loop drains a queue, so frames never interleave. Every protocol violation sends a go-away with the
/// protocol-error code and ends the session; the failures it reports are <see cref="SecureMeshException"/>s.
/// The session owns the transport and disposes it when it ends.
/// </summary>
public sealed partial class YamuxSession : IAsyncDisposable
{
    /// <summary>The multistream-select protocol ID.</summary>
    public const string ProtocolId = "/yamux/1.0.0";

    /// <summary>Largest data frame we send (receivers accept any size within the window); streams take turns frame by frame.</summary>
    internal const int MaxDataFramePayload = 256 * 1024;

    /// <summary>Bytes of one stream being written at most (its writer writes a frame at a time, from its own buffer); a writer beyond it waits.</summary>
    internal const int MaxQueuedPerStream = 512 * 1024;

    /// <summary>Answers to the peer's pings queued at most; further pings go unanswered until the queue drains.</summary>
    internal const int MaxQueuedPongs = 64;

    private readonly Stream _transport;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly Dictionary<uint, YamuxStream> _streams = [];
    private readonly InboundIdWindow _inboundIds = new();
    private readonly Channel<OutFrame> _sendQueue = System.Threading.Channels.Channel.CreateUnbounded<OutFrame>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Channel<YamuxStream> _acceptQueue = System.Threading.Channels.Channel.CreateUnbounded<YamuxStream>(new UnboundedChannelOptions { SingleReader = false });
    private readonly SemaphoreSlim _ackBacklog;
    private readonly SemaphoreSlim _transportLock = new(1, 1);
    private readonly Dictionary<uint, (TaskCompletionSource<TimeSpan> Answer, long SentAt)> _pings = [];
    private readonly CancellationTokenSource _shutdown = new();
    private readonly CancellationToken _shutdownToken; // taken at the start: the source is disposed when the session has ended
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _readLoop;
    private readonly Task _sendLoop;
    private uint _nextStreamId;
    private int _streamCount;
    private long _windowGrowth;
    private uint _nextPingValue;
    private long _rttTicks = -1;
    private int _queuedPongs;
    private int _queuedRefusals;
    private bool _remoteGoAway;
    private bool _closed;
    private bool _abortSend;
    private YamuxGoAwayCode? _goAwayToSend;
    private SecureMeshException? _closeError;
    private string? _closedReason;

    /// <summary>Starts a session over <paramref name="transport"/>; its loops run until the session ends.</summary>
    /// <param name="transport">A connected duplex stream (the secure channel); owned by the session from now on.</param>
    /// <param name="isClient">True on the side that dialled: it opens odd stream IDs.</param>
    /// <param name="options">Limits and timings; null for the defaults.</param>
    /// <param name="timeProvider">The clock for round trips and keep-alive; null for the system clock.</param>
    /// <param name="logger">Where session events go; null for none.</param>
    public YamuxSession(Stream transport, bool isClient, YamuxOptions? options = null, TimeProvider? timeProvider = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(transport);
        Options = options ?? new YamuxOptions();
        Options.Validate();
        _transport = transport;
        IsClient = isClient;
        Time = timeProvider ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        _nextStreamId = isClient ? 1u : 2u;
        _ackBacklog = new SemaphoreSlim(Options.AckBacklog, Options.AckBacklog);
        // The loops start only once both are assigned and the token is taken: a peer that closes at once may end the
        // session (and dispose _shutdown) before this constructor returns, and the end waits for both loops.
        _shutdownToken = _shutdown.Token;
        var send = new Task<Task>(SendLoopAsync);
        Task<Task> read;
        using (ExecutionContext.SuppressFlow())
        {
            // The read loop runs readers' code when it wakes them (WakeInline): in the default context, not ours. A task
            // captures the context when it is created.
            read = new Task<Task>(ReadLoopAsync);
        }
        _sendLoop = send.Unwrap();
        _readLoop = read.Unwrap();
        send.Start(TaskScheduler.Default);
        read.Start(TaskScheduler.Default);
        if (Options.KeepAliveInterval != Timeout.InfiniteTimeSpan)
        {
            _ = Task.Run(KeepAliveLoopAsync);
        }
    }

    /// <summary>True on the dialling side (odd stream IDs).</summary>
    public bool IsClient { get; }

    /// <summary>The limits in force.</summary>
    public YamuxOptions Options { get; }

    internal TimeProvider Time { get; }

    /// <summary>The last measured round-trip time, or null before the first ping was answered.</summary>
    public TimeSpan? RoundTripTime
    {
        get
        {
            var ticks = Interlocked.Read(ref _rttTicks);
            return ticks < 0 ? null : TimeSpan.FromTicks(ticks);
        }
    }

    /// <summary>Open streams (both directions, including those not accepted yet).</summary>
    public int StreamCount => Volatile.Read(ref _streamCount);

    /// <summary>True once the peer sent a go-away: it will open no more streams and accepts none of ours.</summary>
    public bool RemoteGoingAway
    {
        get
        {
            lock (_gate)
            {
                return _remoteGoAway;
            }
        }
    }

    /// <summary>Why the session ended, or null while it runs.</summary>
    public string? ClosedReason => Volatile.Read(ref _closedReason);

    /// <summary>Completes when the session has ended and the transport is disposed.</summary>
    public Task Completion => _completion.Task;

    /// <summary>Opens a stream to the peer. The peer learns of it with the first frame (SYN); writing may start at once.</summary>
    /// <exception cref="SecureMeshException">Network: the session ended, the peer is going away, or <see cref="YamuxOptions.MaxStreams"/> are open.</exception>
    public async ValueTask<YamuxStream> OpenStreamAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfClosed();
        // The spec's ACK backlog: at most so many of our streams unacknowledged.
        await _ackBacklog.WaitAsync(cancellationToken).ConfigureAwait(false);
        YamuxStream stream;
        lock (_gate)
        {
            string? refusal = _closed ? null
                : _remoteGoAway ? "the peer is going away"
                : _streamCount >= Options.MaxStreams ? $"{Options.MaxStreams} streams are open"
                : _nextStreamId > uint.MaxValue - 2 ? "stream IDs are exhausted"
                : null;
            if (_closed || refusal is not null)
            {
                _ackBacklog.Release();
                throw _closed ? SessionError() : new SecureMeshException(SecureMeshErrorKind.Network, "cannot open a yamux stream: " + refusal);
            }
            stream = new YamuxStream(this, _nextStreamId, outbound: true, Time.GetTimestamp()) { HoldsBacklog = true };
            _nextStreamId += 2;
            _streams.Add(stream.Id, stream);
            _streamCount++;
        }
        QueueControl(YamuxFlags.Syn, stream.Id);
        return stream;
    }

    /// <summary>Waits for the next stream the peer opens, and acknowledges it.</summary>
    /// <exception cref="SecureMeshException">The session ended (its kind says why).</exception>
    public async ValueTask<YamuxStream> AcceptStreamAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            try
            {
                if (!await _acceptQueue.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    throw SessionError();
                }
            }
            catch (ChannelClosedException)
            {
                throw SessionError();
            }
            if (_acceptQueue.Reader.TryRead(out var stream))
            {
                if (stream.IsWritable)
                {
                    QueueControl(YamuxFlags.Ack, stream.Id);
                }
                return stream;
            }
        }
    }

    /// <summary>
    /// Like <see cref="AcceptStreamAsync"/>, but null once the session has ended (<see cref="ClosedReason"/> says why)
    /// instead of an exception: for accept loops, whose normal end that is. Cancellation still throws.
    /// </summary>
    public async ValueTask<YamuxStream?> AcceptStreamOrEndAsync(CancellationToken cancellationToken = default)
    {
        while (await _acceptQueue.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (_acceptQueue.Reader.TryRead(out var stream))
            {
                if (stream.IsWritable)
                {
                    QueueControl(YamuxFlags.Ack, stream.Id);
                }
                return stream;
            }
        }
        return null;
    }

    /// <summary>Pings the peer and returns the round-trip time.</summary>
    /// <exception cref="SecureMeshException">Network: the session ended before the answer.</exception>
    public async Task<TimeSpan> PingAsync(CancellationToken cancellationToken = default)
    {
        var answer = SendPing(out var value) ?? throw SessionError();
        try
        {
            return await answer.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ForgetPing(value);
        }
    }

    /// <summary>Queues a ping; its answer's task fails with the session's error when the session ends first. Null when it has ended.</summary>
    private Task<TimeSpan>? SendPing(out uint value)
    {
        var answer = new TaskCompletionSource<TimeSpan>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            value = 0;
            if (_closed)
            {
                return null;
            }
            do
            {
                value = ++_nextPingValue;
            }
            while (_pings.ContainsKey(value));
            _pings.Add(value, (answer, Time.GetTimestamp()));
        }
        Enqueue(new OutFrame(OutKind.Control, YamuxFrameType.Ping, YamuxFlags.Syn, 0, value, null));
        return answer.Task;
    }

    private void ForgetPing(uint value)
    {
        lock (_gate)
        {
            _pings.Remove(value);
        }
    }

    /// <summary>Sends a go-away (no new streams either way) and ends the session once queued frames are written; open streams end with it.</summary>
    public async ValueTask CloseAsync()
    {
        Close(null, YamuxGoAwayCode.Normal, graceful: true, "closed locally");
        await _completion.Task.ConfigureAwait(false);
    }

    /// <summary>Same as <see cref="CloseAsync"/>.</summary>
    public ValueTask DisposeAsync() => CloseAsync();

    public override string ToString() => $"YamuxSession({(IsClient ? "client" : "server")}, {StreamCount} streams)";

    // ---- Stream support ----

    internal void QueueControl(YamuxFlags flags, uint streamId) =>
        Enqueue(new OutFrame(OutKind.Control, YamuxFrameType.WindowUpdate, flags, streamId, 0, null));

    internal void QueueWindowUpdate(YamuxStream stream) =>
        Enqueue(new OutFrame(OutKind.WindowUpdate, YamuxFrameType.WindowUpdate, YamuxFlags.None, stream.Id, 0, stream));

    /// <summary>Takes up to <paramref name="wanted"/> bytes of window growth from the connection budget; returns what was granted.</summary>
    internal long ReserveWindowGrowth(long wanted)
    {
        var budget = Options.GrowthBudget;
        while (true)
        {
            var used = Interlocked.Read(ref _windowGrowth);
            var granted = Math.Min(wanted, budget - used);
            if (granted <= 0)
            {
                return 0;
            }
            if (Interlocked.CompareExchange(ref _windowGrowth, used + granted, used) == used)
            {
                return granted;
            }
        }
    }

    /// <summary>The window growth all streams hold together (for tests and diagnostics).</summary>
    internal long WindowGrowthInUse => Interlocked.Read(ref _windowGrowth);

    internal void OnWindowGrown(uint streamId, uint window, TimeSpan rtt) => YamuxLog.WindowGrown(_logger, streamId, window, rtt);

    /// <summary>Forgets a stream that is done with (both sides closed or reset, nothing unread), freeing its slot and budget.</summary>
    internal void TryRetire(YamuxStream stream)
    {
        if (!stream.TryMarkRetired())
        {
            return;
        }
        lock (_gate)
        {
            if (_streams.Remove(stream.Id))
            {
                _streamCount--;
            }
        }
        Interlocked.Add(ref _windowGrowth, -stream.WindowGrowth);
        ReleaseBacklog(stream);
    }

    private void ReleaseBacklog(YamuxStream stream)
    {
        bool held;
        lock (_gate)
        {
            held = stream.HoldsBacklog;
            stream.HoldsBacklog = false;
        }
        if (held)
        {
            _ackBacklog.Release();
        }
    }

    private void Enqueue(OutFrame frame) => _sendQueue.Writer.TryWrite(frame);

    private void ThrowIfClosed()
    {
        if (Volatile.Read(ref _closed))
        {
            throw SessionError();
        }
    }

    private SecureMeshException SessionError() =>
        Volatile.Read(ref _closeError) ?? new SecureMeshException(SecureMeshErrorKind.Network, "the yamux session has ended: " + (ClosedReason ?? "closed"));

    // ---- Ending ----

    /// <summary>
    /// Ends the session once: fails the streams and waiters, queues the go-away (<paramref name="goAway"/>, none when
    /// null), lets the send loop write it (after the queued frames when <paramref name="graceful"/>), then disposes the transport.
    /// </summary>
    private void Close(SecureMeshException? error, YamuxGoAwayCode? goAway, bool graceful, string reason)
    {
        YamuxStream[] streams;
        (TaskCompletionSource<TimeSpan> Answer, long SentAt)[] pings;
        bool halfClose;
        lock (_gate)
        {
            if (_closed)
            {
                return;
            }
            _closed = true;
            _closedReason = reason;
            _closeError = error ?? new SecureMeshException(SecureMeshErrorKind.Network, "the yamux session has ended: " + reason);
            _goAwayToSend = goAway;
            _abortSend = !graceful;
            halfClose = graceful && goAway == YamuxGoAwayCode.Normal;
            streams = [.. _streams.Values];
            pings = [.. _pings.Values];
        }
        if (error is { Kind: SecureMeshErrorKind.Protocol })
        {
            YamuxLog.ProtocolError(_logger, IsClient ? "client" : "server", reason);
        }
        else
        {
            YamuxLog.SessionClosed(_logger, IsClient ? "client" : "server", reason);
        }
        _sendQueue.Writer.TryComplete();
        _acceptQueue.Writer.TryComplete();
        foreach (var stream in streams)
        {
            stream.OnSessionClosed(_closeError);
        }
        foreach (var ping in pings)
        {
            ping.Answer.TrySetException(_closeError);
        }
        _ = FinishAsync(halfClose);
    }

    private async Task FinishAsync(bool halfClose)
    {
        // The send loop writes the go-away and stops; a peer that does not read gets CloseTimeout, then the drop.
        // (Awaited without throwing: a timeout or a failure here is an ordinary way for a session to end.)
        var sent = _sendLoop.WaitAsync(Options.CloseTimeout, Time);
        await sent.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (halfClose && sent.IsCompletedSuccessfully && !_readLoop.IsCompleted && await TryCloseWriteAsync().ConfigureAwait(false))
        {
            // Our close: after the go-away, our end of the connection (a FIN); the peer ends its side on reading it, and
            // our read loop ends on that clean end of stream rather than on a cancelled read (an exception on each of
            // its layers, for every connection closed). A peer that does not end its side gets CloseTimeout.
            await _readLoop.WaitAsync(Options.CloseTimeout, Time).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        await _shutdown.CancelAsync().ConfigureAwait(false);
        try
        {
            await _transport.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException or System.Net.Sockets.SocketException)
        {
        }
        catch (SecureMeshException)
        {
        }
        try
        {
            await Task.WhenAll(_readLoop, _sendLoop).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Both loops catch their own failures; nothing is left to report.
        }
        // Streams retired by the close release their share; queued-but-unaccepted streams are dropped.
        while (_acceptQueue.Reader.TryRead(out var stream))
        {
            stream.Dispose();
        }
        _shutdown.Dispose();
        _completion.TrySetResult();
    }

    /// <summary>Ends our sending direction of the transport (the Noise stream's, or a bare TCP stream's); false when it cannot.</summary>
    private async ValueTask<bool> TryCloseWriteAsync()
    {
        try
        {
            if (_transport is System.Net.Sockets.NetworkStream network)
            {
                network.Socket.Shutdown(System.Net.Sockets.SocketShutdown.Send);
                return true;
            }
            if (_transport is not IHalfClosable halfClosable)
            {
                return false;
            }
            using var timeout = new CancellationTokenSource(Options.CloseTimeout, Time);
            return await halfClosable.CloseWriteAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (IsTransportFailure(e))
        {
            return false;
        }
    }

    private enum OutKind : byte
    {
        /// <summary>A header-only frame given whole: SYN, ACK, FIN, RST, ping, pong, refusal.</summary>
        Control,
        /// <summary>The stream's pending credit, taken when the frame is written (so updates coalesce).</summary>
        WindowUpdate,
    }

    private readonly record struct OutFrame(OutKind Kind, YamuxFrameType Type, YamuxFlags Flags, uint StreamId, uint Value, YamuxStream? Stream);
}
