using SecureMesh.Core.Channel;

namespace SecureMesh.Core.Libp2p.Yamux;

/// <summary>
/// One yamux stream: a bidirectional byte stream with its own flow control. One reader and one writer at a time.
/// <see cref="CloseWriteAsync"/> half-closes (FIN: the peer reads the end of the stream, we can still read);
/// <see cref="Reset"/> aborts both directions (RST). Disposing closes gracefully when everything the peer sent was
/// read and the peer has finished, and resets otherwise (as TCP does with unread data).
/// Failures of the stream or its session are <see cref="SecureMeshException"/>s.
/// </summary>
public sealed class YamuxStream : DuplexStream
{
    /// <summary>A waiting reader's buffer at least this large may be filled by the read loop directly (no copy through our buffer).</summary>
    internal const int MinParkedBuffer = 16 * 1024;

    /// <summary>Bytes waiting for a reader at most before it is woken, while the read loop still has frames to read without waiting.</summary>
    private const int MaxDeferredWake = 256 * 1024;

    private readonly YamuxSession _session;
    private readonly Lock _lock = new();
    private readonly ReceiveBuffer _received = new();
    private readonly AsyncSignal _readable = new();
    private readonly AsyncSignal _writable = new();

    // Receive side (under _lock). _receiveWindow is what the peer may still send; the receive window is
    // _maxReceiveWindow, and (_maxReceiveWindow - _receiveWindow - buffered) is what the application read but the
    // peer has not been credited for yet.
    private uint _receiveWindow = YamuxOptions.InitialWindow;
    private uint _maxReceiveWindow = YamuxOptions.InitialWindow;
    private long _lastWindowUpdate;
    private uint _creditToSend;
    private bool _windowUpdateQueued;
    private uint _arriving; // of the data frame being read: taken from the window, not appended yet
    private int _wakeAt = 1; // buffered bytes at which the waiting reader is woken
    private int _wakeFull = 1; // ... and, while the rest of a data frame is arriving, at which its buffer is full
    private Memory<byte> _parked; // the waiting reader's buffer, which the read loop may fill directly (never after the reader left)
    private int _delivered; // bytes the read loop put into _parked; they come before those in _received
    private long _deliveredTotal;
    private Action? _suspendedLoop; // the session's read loop, waiting for this stream's reader to come back (see TrySuspendLoop)
    private bool _readerWaiting; // a read waits for bytes
    private bool _readerActive; // the reader took bytes and has not waited since
    private bool _handOffRefused; // the read loop gave up waiting for the reader; it waits again once the reader waits
    private bool _loopSuspended; // read loop: its last hand-off suspended it

    // Send side (under _lock). _queued: bytes copied into frames the send loop has not written yet.
    private long _sendWindow = YamuxOptions.InitialWindow;
    private int _queued;
    private int _writing;
    private int _reading;

    // State (under _lock).
    private bool _remoteFin;
    private bool _localFin;
    private bool _remoteReset;
    private bool _localReset;
    private bool _disposed;
    private bool _retired;
    private SecureMeshException? _sessionError;

    internal YamuxStream(YamuxSession session, uint id, bool outbound, long now)
    {
        _session = session;
        Id = id;
        IsOutbound = outbound;
        _lastWindowUpdate = now;
    }

    /// <summary>The stream ID (odd when the client opened it, even when the server did).</summary>
    public uint Id { get; }

    /// <summary>True when we opened the stream.</summary>
    public bool IsOutbound { get; }

    /// <summary>The current receive window (grows with auto-tuning).</summary>
    public uint ReceiveWindow
    {
        get
        {
            lock (_lock)
            {
                return _maxReceiveWindow;
            }
        }
    }

    /// <summary>Bytes received and not read yet.</summary>
    public int BufferedBytes
    {
        get
        {
            lock (_lock)
            {
                return _delivered + _received.Length;
            }
        }
    }

    /// <summary>What we may still send before the peer grants more.</summary>
    public long SendWindow
    {
        get
        {
            lock (_lock)
            {
                return _sendWindow;
            }
        }
    }

    /// <summary>True once the stream was reset by either side.</summary>
    public bool IsReset
    {
        get
        {
            lock (_lock)
            {
                return _localReset || _remoteReset;
            }
        }
    }

    internal bool AckPending { get; set; }

    /// <summary>
    /// When set, a read after the session has ended (nothing left to read) returns 0, the end of the stream, instead of
    /// throwing the session's error, and a write that finds the session ended returns without writing: for the node's
    /// own short requests (identify), for which a peer that closed the connection at once is no failure worth an
    /// exception on each of their layers. Resets still throw.
    /// </summary>
    internal bool EndsQuietly { get; set; }

    internal bool HoldsBacklog;

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Flush()
    {
    }

    /// <summary>Waits until everything written so far has been handed to the transport.</summary>
    public override async Task FlushAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _writing, 1) != 0)
        {
            throw new InvalidOperationException("yamux streams allow one write at a time");
        }
        try
        {
            while (true)
            {
                lock (_lock)
                {
                    if (_queued == 0 || _localReset || _remoteReset || _sessionError is not null)
                    {
                        return;
                    }
                }
                ReleaseLoop(refuse: false);
                await _writable.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            Volatile.Write(ref _writing, 0);
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>Reads what has arrived (waiting for at least one byte); 0 once the peer has half-closed and everything was read.</summary>
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ReadAsync(buffer, 1, cancellationToken);

    /// <summary>
    /// Like <see cref="ReadAsync(Memory{byte}, CancellationToken)"/>, but while waiting, waits for <paramref name="waitFor"/>
    /// bytes (at most the buffer's length, and at most half of what the window lets the peer send before we read, so
    /// the peer is never held up by it) instead of waking up for every frame: for a reader that knows how much is coming
    /// (a message of known length). Returns less at the end of the stream.
    /// </summary>
    public async ValueTask<int> ReadAsync(Memory<byte> buffer, int waitFor, CancellationToken cancellationToken = default)
    {
        // One reader at a time: the read loop may be filling this reader's buffer.
        if (Interlocked.Exchange(ref _reading, 1) != 0)
        {
            throw new InvalidOperationException("yamux streams allow one read at a time");
        }
        try
        {
            while (true)
            {
                var credit = false;
                int read;
                Action? resume = null;
                lock (_lock)
                {
                    // Whatever happens next, the read loop may no longer write into the buffer, unless it is parked again.
                    var delivered = _delivered;
                    _parked = default;
                    _delivered = 0;
                    _readerWaiting = false;
                    ObjectDisposedException.ThrowIf(_disposed, this);
                    if (_localReset)
                    {
                        throw new SecureMeshException(SecureMeshErrorKind.Network, $"yamux stream {Id} was reset");
                    }
                    var have = delivered + _received.Length;
                    var reachable = (long)have + _arriving + _receiveWindow;
                    var want = (int)Math.Max(1, Math.Min(Math.Min(waitFor, buffer.Length), reachable / 2));
                    if (have > 0 && !buffer.IsEmpty && (have >= want || _remoteFin || _remoteReset || _sessionError is not null))
                    {
                        read = delivered + _received.Read(buffer.Span[delivered..]);
                        credit = ComputeWindowUpdate();
                        _readerActive = true;
                    }
                    else if (_remoteReset)
                    {
                        throw new SecureMeshException(SecureMeshErrorKind.Network, $"yamux stream {Id} was reset by the peer");
                    }
                    else if (_remoteFin || buffer.IsEmpty)
                    {
                        read = 0;
                    }
                    else if (_sessionError is not null)
                    {
                        read = EndsQuietly ? 0 : throw _sessionError;
                    }
                    else
                    {
                        read = -1;
                        _readerWaiting = true;
                        _readerActive = false;
                        _handOffRefused = false;
                        resume = _suspendedLoop;
                        _suspendedLoop = null;
                        _wakeAt = want;
                        _wakeFull = Math.Max(want, buffer.Length);
                        if (_received.Length > 0 && buffer.Length - have >= MinParkedBuffer)
                        {
                            // Some bytes are here, fewer than waited for: taken now (they would be copied out at the
                            // wake-up anyway), so that the buffer can be parked and what comes next goes straight into
                            // it, instead of into our buffer and copied out again (issue 20: without this a reader of
                            // large messages found bytes buffered at nearly every wait and was never parked).
                            delivered += _received.Read(buffer.Span[delivered..]);
                        }
                        if (delivered > 0 || (_received.Length == 0 && buffer.Length >= MinParkedBuffer))
                        {
                            // Nothing is buffered before: the read loop may put what comes next straight into the caller's buffer.
                            _parked = buffer;
                            _delivered = delivered;
                        }
                    }
                }
                if (read >= 0)
                {
                    if (credit)
                    {
                        _session.QueueWindowUpdate(this);
                    }
                    if (read == 0 || _remoteFin)
                    {
                        _session.TryRetire(this);
                    }
                    return read;
                }
                if (resume is not null)
                {
                    // The read loop waited for us to come back (a hand-off): it goes on here, into our buffer, until it
                    // next waits, and then we find our bytes without a wake-up.
                    YamuxSession.ResumeLoop(resume);
                }
                try
                {
                    await _readable.WaitAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    lock (_lock)
                    {
                        // Bytes the read loop already put into the buffer are the caller's: a cancellation that came too late.
                        read = _delivered;
                        _parked = default;
                        _delivered = 0;
                        if (read > 0)
                        {
                            credit = ComputeWindowUpdate();
                        }
                    }
                    if (read == 0 || e is not OperationCanceledException)
                    {
                        throw;
                    }
                    if (credit)
                    {
                        _session.QueueWindowUpdate(this);
                    }
                    return read;
                }
            }
        }
        finally
        {
            Volatile.Write(ref _reading, 0);
        }
    }

    /// <summary>
    /// Sends <paramref name="buffer"/> in data frames written straight from it to the transport (no copy), waiting while
    /// the peer's window is full or the transport is busy with another stream's frame. Cancelling a wait leaves the
    /// stream usable; what was written before is sent.
    /// </summary>
    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _writing, 1) != 0)
        {
            throw new InvalidOperationException("yamux streams allow one write at a time");
        }
        try
        {
            while (!buffer.IsEmpty)
            {
                int chunk;
                lock (_lock)
                {
                    if (_sessionError is not null && WritesEndQuietly())
                    {
                        return;
                    }
                    ThrowIfCannotWrite();
                    chunk = _queued >= YamuxSession.MaxQueuedPerStream ? 0
                        : (int)Math.Min(Math.Min(buffer.Length, _sendWindow), YamuxSession.MaxDataFramePayload);
                    if (chunk > 0)
                    {
                        _sendWindow -= chunk;
                        _queued += chunk;
                    }
                }
                if (chunk == 0)
                {
                    // The window update we wait for may be behind the data the read loop holds for our reader.
                    ReleaseLoop(refuse: false);
                    await _writable.WaitAsync(cancellationToken).ConfigureAwait(false);
                    continue;
                }
                bool written;
                try
                {
                    written = await _session.WriteDataAsync(this, buffer[..chunk], cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // Cancelled while waiting for the transport: nothing of this chunk was sent, its window is ours again.
                    lock (_lock)
                    {
                        _sendWindow += chunk;
                    }
                    OnDataWritten(chunk);
                    throw;
                }
                OnDataWritten(chunk);
                if (!written)
                {
                    lock (_lock)
                    {
                        if (WritesEndQuietly())
                        {
                            return;
                        }
                        ThrowIfCannotWrite();
                    }
                    throw new SecureMeshException(SecureMeshErrorKind.Network, $"yamux stream {Id}: the session has ended");
                }
                buffer = buffer[chunk..];
            }
        }
        finally
        {
            Volatile.Write(ref _writing, 0);
        }
    }

    /// <summary>Half-closes: sends FIN after what was written. Reading goes on until the peer closes too.</summary>
    public ValueTask CloseWriteAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (Volatile.Read(ref _writing) != 0)
        {
            throw new InvalidOperationException("cannot close a yamux stream during a write");
        }
        lock (_lock)
        {
            if (_localFin)
            {
                return ValueTask.CompletedTask;
            }
            ThrowIfCannotWrite();
            _localFin = true;
        }
        _session.QueueControl(YamuxFlags.Fin, Id);
        _session.TryRetire(this);
        return ValueTask.CompletedTask;
    }

    /// <summary>Aborts the stream in both directions: sends RST and drops what was received.</summary>
    public void Reset()
    {
        bool send;
        lock (_lock)
        {
            if (_localReset || _remoteReset || _sessionError is not null)
            {
                return;
            }
            // A stream closed both ways needs no RST; it is already gone on the peer's side.
            send = !(_localFin && _remoteFin);
            _localReset = true;
            DropReceived();
        }
        ReleaseLoop(refuse: true);
        _readable.Set();
        _writable.Set();
        if (send)
        {
            _session.QueueControl(YamuxFlags.Rst, Id);
        }
        _session.TryRetire(this);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            bool reset;
            bool fin;
            lock (_lock)
            {
                if (_disposed)
                {
                    return;
                }
                reset = !_localReset && !_remoteReset && _sessionError is null && (!_remoteFin || _received.Length > 0);
                fin = !reset && !_localFin && !_localReset && !_remoteReset && _sessionError is null && Volatile.Read(ref _writing) == 0;
            }
            if (reset)
            {
                Reset();
            }
            else if (fin)
            {
                try
                {
                    CloseWriteAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
                }
                catch (SecureMeshException)
                {
                    // The stream ended meanwhile: nothing left to close.
                }
            }
            lock (_lock)
            {
                _disposed = true;
                DropReceived();
            }
            ReleaseLoop(refuse: true);
            _readable.Set();
            _session.TryRetire(this);
        }
        base.Dispose(disposing);
    }

    public override string ToString() => $"YamuxStream({Id}, {(IsOutbound ? "outbound" : "inbound")})";

    /// <summary>
    /// Whether a write that finds the session ended returns without writing (<see cref="EndsQuietly"/>; the next read
    /// then ends the stream) instead of throwing; a reset, a disposed stream or a write after our FIN still throw. Under _lock.
    /// </summary>
    private bool WritesEndQuietly() => EndsQuietly && !_disposed && !_localReset && !_remoteReset && !_localFin;

    private void ThrowIfCannotWrite()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_localReset || _remoteReset)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Network, $"yamux stream {Id} was reset{(_remoteReset ? " by the peer" : "")}");
        }
        if (_sessionError is not null)
        {
            throw _sessionError;
        }
        if (_localFin)
        {
            throw new InvalidOperationException($"yamux stream {Id} was closed for writing");
        }
    }

    // ---- Called by the session (its read loop, its send loop, or on close). ----

    /// <summary>
    /// Decides, after the application read, whether to credit the peer (rust-libp2p's rule): once half the window is
    /// consumed, credit what was read; if that half went by in under two round trips, first double the window within
    /// the stream maximum and the connection budget. Under _lock.
    /// </summary>
    private bool ComputeWindowUpdate()
    {
        if (_remoteFin || _localReset)
        {
            return false;
        }
        var consumed = _maxReceiveWindow - _receiveWindow - (uint)_received.Length - _arriving;
        if (consumed < _maxReceiveWindow / 2)
        {
            return false;
        }
        var now = _session.Time.GetTimestamp();
        var rtt = _session.RoundTripTime;
        if (_session.Options.AutoTuneWindows && rtt is { } r && r > TimeSpan.Zero
            && _session.Time.GetElapsedTime(_lastWindowUpdate, now) < r * 2
            && _maxReceiveWindow < _session.Options.MaxStreamWindow)
        {
            var wanted = Math.Min((long)_maxReceiveWindow * 2, _session.Options.MaxStreamWindow) - _maxReceiveWindow;
            var granted = _session.ReserveWindowGrowth(wanted);
            if (granted > 0)
            {
                _maxReceiveWindow += (uint)granted;
                _session.OnWindowGrown(Id, _maxReceiveWindow, r);
            }
        }
        _lastWindowUpdate = now;
        var credit = _maxReceiveWindow - _receiveWindow - (uint)_received.Length - _arriving;
        _receiveWindow += credit;
        _creditToSend += credit;
        if (_windowUpdateQueued)
        {
            return false;
        }
        _windowUpdateQueued = true;
        return true;
    }

    /// <summary>Send loop: the credit to announce now (0 if none).</summary>
    internal uint TakeCredit()
    {
        lock (_lock)
        {
            _windowUpdateQueued = false;
            var credit = _creditToSend;
            _creditToSend = 0;
            return _localReset || _remoteReset ? 0 : credit;
        }
    }

    /// <summary>Read loop: checks a data frame of <paramref name="length"/> bytes against the state and the window, and takes it from the window.</summary>
    internal bool AcceptData(uint length, out string? violation)
    {
        lock (_lock)
        {
            violation = null;
            if (_remoteFin && length > 0)
            {
                violation = $"data on stream {Id} after its FIN";
                return false;
            }
            if (length > _receiveWindow)
            {
                violation = $"{length} bytes of data on stream {Id} beyond its window of {_receiveWindow}";
                return false;
            }
            _receiveWindow -= length;
            var deliver = !(_localReset || _remoteReset || _disposed);
            _arriving = deliver ? length : 0;
            return deliver;
        }
    }

    /// <summary>
    /// Read loop: appends payload bytes (dropped when the stream was reset or disposed meanwhile), into the waiting
    /// reader's buffer as far as it has room and nothing is buffered before them.
    /// </summary>
    internal void Append(ReadOnlySpan<byte> data)
    {
        bool wake;
        bool urgent;
        lock (_lock)
        {
            if (_localReset || _remoteReset || _disposed)
            {
                _arriving = 0;
                return;
            }
            _arriving -= (uint)data.Length;
            if (_received.Length == 0 && !_parked.IsEmpty)
            {
                var n = Math.Min(data.Length, _parked.Length - _delivered);
                data[..n].CopyTo(_parked.Span[_delivered..]);
                _delivered += n;
                _deliveredTotal += n;
                data = data[n..];
            }
            if (!data.IsEmpty)
            {
                _received.Append(data);
            }
            wake = ShouldWake();
            urgent = WakeIsUrgent();
        }
        if (wake)
        {
            _session.WakeReader(this, urgent);
        }
    }

    /// <summary>Read loop: appends a pooled array read straight from the transport (returned to the pool when dropped).</summary>
    internal void AppendOwned(byte[] array, int length)
    {
        bool wake;
        bool urgent;
        lock (_lock)
        {
            if (_localReset || _remoteReset || _disposed)
            {
                _arriving = 0;
                System.Buffers.ArrayPool<byte>.Shared.Return(array);
                return;
            }
            _received.AppendOwned(array, length);
            _arriving -= (uint)length;
            wake = ShouldWake();
            urgent = WakeIsUrgent();
        }
        if (wake)
        {
            _session.WakeReader(this, urgent);
        }
    }

    /// <summary>
    /// Whether the waiting reader has enough: what it waits for, and either the whole data frame (no more of it is
    /// arriving) or a full buffer. The rest of a frame follows at once, so the reader is woken once per frame, not once
    /// per transport read. Under _lock.
    /// </summary>
    private bool ShouldWake()
    {
        var have = _delivered + _received.Length;
        return have >= _wakeAt && (_arriving == 0 || have >= _wakeFull);
    }

    /// <summary>
    /// Whether the reader must be woken now rather than when the read loop next waits for the network: once a
    /// quarter of the window (at most 256 KiB) is waiting, so that the peer never runs out of window meanwhile. Under _lock.
    /// </summary>
    private bool WakeIsUrgent() => _delivered + _received.Length >= Math.Min(MaxDeferredWake, _maxReceiveWindow / 4);

    /// <summary>
    /// Wakes the waiting reader (the session's read loop calls it, now or deferred); <paramref name="inline"/>: its
    /// continuation runs on the calling thread (see <see cref="AsyncSignal.SetInline"/>).
    /// </summary>
    internal void SignalReadable(bool inline)
    {
        if (inline)
        {
            _readable.SetInline();
        }
        else
        {
            _readable.Set();
        }
    }

    /// <summary>
    /// Read loop: reads up to <paramref name="max"/> bytes of the data frame being received from
    /// <paramref name="transport"/> straight into the waiting reader's buffer, if the reader waits with nothing buffered,
    /// has room for a large read, and the bytes are there without waiting (the lock is held throughout, so the reader
    /// cannot leave meanwhile). Returns the bytes read, 0 when it could not.
    /// </summary>
    internal int ReceiveImmediately(IImmediateReadStream transport, int max)
    {
        bool wake;
        bool urgent;
        int n;
        lock (_lock)
        {
            var room = _parked.Length - _delivered;
            if (_parked.IsEmpty || _received.Length > 0 || room < Math.Min(max, MinParkedBuffer) || _localReset || _remoteReset || _disposed)
            {
                return 0;
            }
            if (!transport.TryReadImmediately(_parked.Span.Slice(_delivered, Math.Min(room, max)), out n) || n == 0)
            {
                return 0;
            }
            _delivered += n;
            _deliveredTotal += n;
            _arriving -= (uint)n;
            wake = ShouldWake();
            urgent = WakeIsUrgent();
        }
        if (wake)
        {
            _session.WakeReader(this, urgent);
        }
        return n;
    }

    /// <summary>Bytes the read loop put straight into a waiting reader's buffer, not through our buffer (for tests).</summary>
    internal long BytesDeliveredDirectly
    {
        get
        {
            lock (_lock)
            {
                return _deliveredTotal;
            }
        }
    }

    /// <summary>True while a reader waits with a buffer the read loop may fill directly.</summary>
    internal bool HasParkedReader
    {
        get
        {
            lock (_lock)
            {
                return !_parked.IsEmpty && _received.Length == 0 && _parked.Length - _delivered >= MinParkedBuffer;
            }
        }
    }

    /// <summary>
    /// Read loop: suspends the read loop (<paramref name="continuation"/>) until this stream's reader comes back for
    /// more, when the reader has what it waited for or is busy with bytes it took, and the payload arriving for it would
    /// otherwise be decrypted into our buffer and copied out again: the reader then resumes the loop on its own thread
    /// (see <see cref="YamuxSession.ResumeLoop"/>) with its buffer parked, so the payload is decrypted straight into it,
    /// as the bare Noise stream's reader does. False (nothing kept) when the reader is not expected back.
    /// </summary>
    internal bool TrySuspendLoop(Action continuation)
    {
        lock (_lock)
        {
            if (!CanSuspendLoopCore())
            {
                return false;
            }
            _suspendedLoop = continuation;
            _loopSuspended = true;
            return true;
        }
    }

    /// <summary>Read loop: whether <see cref="TrySuspendLoop"/> would suspend it now.</summary>
    internal bool CanSuspendLoop()
    {
        lock (_lock)
        {
            return CanSuspendLoopCore();
        }
    }

    /// <summary>Read loop, once it goes on: whether it had been suspended (resumed by the reader or released).</summary>
    internal bool TakeLoopSuspended()
    {
        lock (_lock)
        {
            var suspended = _loopSuspended;
            _loopSuspended = false;
            return suspended;
        }
    }

    private bool CanSuspendLoopCore()
    {
        var parkedRoom = _parked.IsEmpty ? 0 : _parked.Length - _delivered;
        var comingBack = _readerWaiting ? ShouldWake() : _readerActive;
        return comingBack && !_handOffRefused && _suspendedLoop is null && parkedRoom < MinParkedBuffer
            && !_localReset && !_remoteReset && !_disposed && _sessionError is null;
    }

    /// <summary>
    /// Lets a suspended read loop go on without the reader, on the thread pool (the reader may not come back: it reset,
    /// waits to write, or the session's grace ran out); <paramref name="refuse"/>: and suspend no more until the reader
    /// next waits.
    /// </summary>
    internal void ReleaseLoop(bool refuse)
    {
        Action? loop;
        lock (_lock)
        {
            loop = _suspendedLoop;
            _suspendedLoop = null;
            _handOffRefused |= refuse && loop is not null;
        }
        if (loop is not null)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static c => c(), loop, preferLocal: false);
        }
    }

    /// <summary>Drops what was received and not read (reset or disposed). Under _lock.</summary>
    private void DropReceived()
    {
        _received.Clear();
        _parked = default;
        _delivered = 0;
    }

    /// <summary>Read loop: the peer granted more window.</summary>
    internal bool AddSendWindow(uint delta)
    {
        lock (_lock)
        {
            var window = _sendWindow + delta;
            if (window > uint.MaxValue)
            {
                return false;
            }
            _sendWindow = window;
        }
        if (delta > 0)
        {
            _writable.Set();
        }
        return true;
    }

    internal void OnRemoteFin()
    {
        lock (_lock)
        {
            _remoteFin = true;
        }
        _readable.Set();
    }

    internal void OnRemoteReset()
    {
        lock (_lock)
        {
            if (_localReset)
            {
                return;
            }
            _remoteReset = true;
            DropReceived();
        }
        _readable.Set();
        _writable.Set();
    }

    internal void OnSessionClosed(SecureMeshException error)
    {
        lock (_lock)
        {
            _sessionError ??= error;
        }
        ReleaseLoop(refuse: true);
        _readable.Set();
        _writable.Set();
    }

    /// <summary>True once the stream needs nothing more from the session: both sides closed or one reset, and nothing left unread.</summary>
    internal bool TryMarkRetired()
    {
        lock (_lock)
        {
            if (_retired)
            {
                return false;
            }
            var ended = _localReset || _remoteReset || _sessionError is not null || (_localFin && _remoteFin);
            if (!ended || (_received.Length > 0 && !_disposed))
            {
                return false;
            }
            _retired = true;
            return true;
        }
    }

    /// <summary>The window growth above the initial window this stream holds from the connection budget.</summary>
    internal long WindowGrowth
    {
        get
        {
            lock (_lock)
            {
                return _maxReceiveWindow - YamuxOptions.InitialWindow;
            }
        }
    }

    internal bool IsWritable
    {
        get
        {
            lock (_lock)
            {
                return !_localReset && !_remoteReset && _sessionError is null;
            }
        }
    }

    /// <summary>Send loop: <paramref name="count"/> queued bytes were written (or dropped); a writer waiting for room may go on.</summary>
    internal void OnDataWritten(int count)
    {
        bool wake;
        lock (_lock)
        {
            var wasFull = _queued >= YamuxSession.MaxQueuedPerStream;
            _queued -= count;
            wake = (wasFull && _queued < YamuxSession.MaxQueuedPerStream) || _queued == 0;
        }
        if (wake)
        {
            _writable.Set();
        }
    }
}
