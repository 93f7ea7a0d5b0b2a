using System.Buffers;
using System.Runtime.CompilerServices;
using System.Net.Sockets;

namespace SecureMesh.Core.Libp2p.Yamux;

public sealed partial class YamuxSession
{
    /// <summary>Bytes gathered (control frames and a small data frame) before writing to the transport.</summary>
    private const int SendBufferSize = 64 * 1024;

    /// <summary>Data frames up to this size are copied in with the queued control frames; larger ones are written from the writer's buffer.</summary>
    private const int SmallFrame = 8 * 1024;

    /// <summary>The read buffer while frames arrive back to back; returned to the pool when the connection goes quiet.</summary>
    private const int ReadBufferSize = 256 * 1024;

    /// <summary>The read buffer of a quiet connection (an idle session holds no large buffer).</summary>
    private const int IdleReadBufferSize = 512;

    /// <summary>Payload left in a frame from which reads go straight into the stream's buffer.</summary>
    private const int DirectReadThreshold = 16 * 1024;

    private readonly byte[] _idleReadBuffer = new byte[IdleReadBufferSize];
    private readonly List<YamuxStream> _deferredWakes = []; // read loop only
    private Timer? _handOffTimer; // read loop only
    private YamuxStream? _handOffStream;
    private byte[]? _readBuffer;
    private int _readStart;
    private int _readEnd;
    private bool _lastReadFilled;

    // ---- Sending: control frames through the send loop, data frames written by their writer ----

    /// <summary>
    /// Writes the queued control frames (SYN, ACK, FIN, RST, pings, window updates) whenever there are some. Data does
    /// not pass through here: a stream's writer writes its frames itself under the transport lock (see
    /// <see cref="WriteDataAsync"/>), so a payload goes from the writer's buffer straight into the Noise frames, with no
    /// copy and no hand-over to another thread. Whoever holds the lock first writes what is queued, so the order of
    /// frames is the order in which they were queued or written.
    /// </summary>
    private async Task SendLoopAsync()
    {
        var reader = _sendQueue.Reader;
        var token = _shutdownToken;
        try
        {
            while (await reader.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
            {
                await _transportLock.WaitAsync(token).ConfigureAwait(false);
                var buffer = ArrayPool<byte>.Shared.Rent(SendBufferSize);
                try
                {
                    var used = await DrainQueueAsync(buffer, token).ConfigureAwait(false);
                    if (used > 0)
                    {
                        await WriteTransportAsync(buffer, used, token).ConfigureAwait(false);
                    }
                }
                finally
                {
                    // Quiet: hold no send buffer while idle.
                    ArrayPool<byte>.Shared.Return(buffer);
                    _transportLock.Release();
                }
            }
            // Closed: the go-away goes last.
            YamuxGoAwayCode? goAway;
            lock (_gate)
            {
                goAway = _goAwayToSend;
            }
            if (goAway is { } code)
            {
                await _transportLock.WaitAsync(token).ConfigureAwait(false);
                try
                {
                    var frame = new byte[YamuxHeader.Size];
                    new YamuxHeader(YamuxFrameType.GoAway, YamuxFlags.None, 0, (uint)code).Write(frame);
                    await WriteTransportAsync(frame, YamuxHeader.Size, token).ConfigureAwait(false);
                }
                finally
                {
                    _transportLock.Release();
                }
            }
        }
        catch (Exception e) when (IsTransportFailure(e))
        {
            Close(new SecureMeshException(SecureMeshErrorKind.Network, "the connection broke while sending", e), null, graceful: false, "the connection broke while sending");
        }
        catch (Exception e)
        {
            Close(new SecureMeshException(SecureMeshErrorKind.Network, "internal error in the yamux send loop", e), YamuxGoAwayCode.InternalError, graceful: false, "internal error while sending: " + e.GetType().Name);
        }
        finally
        {
            // Nothing more will be sent: count out what is still queued.
            _sendQueue.Writer.TryComplete();
            while (reader.TryRead(out var frame))
            {
                CountOut(frame);
            }
        }
    }

    /// <summary>
    /// Writes one data frame of <paramref name="stream"/> to the transport, after the frames queued before it. The
    /// caller's token only cancels the wait for the transport: once the frame is started it is written whole.
    /// False when the session has ended (nothing was written).
    /// </summary>
    internal async ValueTask<bool> WriteDataAsync(YamuxStream stream, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        await _transportLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        byte[]? buffer = null;
        try
        {
            if (Volatile.Read(ref _closed))
            {
                return false;
            }
            var token = _shutdownToken;
            buffer = ArrayPool<byte>.Shared.Rent(SendBufferSize);
            var used = await DrainQueueAsync(buffer, token).ConfigureAwait(false);
            if (stream.IsReset)
            {
                // Reset meanwhile: the peer drops data for a reset stream anyway.
            }
            else if (data.Length <= SmallFrame)
            {
                // A small frame goes out with the queued ones in one transport write.
                if (buffer.Length - used < YamuxHeader.Size + data.Length)
                {
                    await WriteTransportAsync(buffer, used, token).ConfigureAwait(false);
                    used = 0;
                }
                new YamuxHeader(YamuxFrameType.Data, YamuxFlags.None, stream.Id, (uint)data.Length).Write(buffer.AsSpan(used));
                data.Span.CopyTo(buffer.AsSpan(used + YamuxHeader.Size));
                used += YamuxHeader.Size + data.Length;
            }
            else
            {
                if (buffer.Length - used < YamuxHeader.Size)
                {
                    await WriteTransportAsync(buffer, used, token).ConfigureAwait(false);
                    used = 0;
                }
                new YamuxHeader(YamuxFrameType.Data, YamuxFlags.None, stream.Id, (uint)data.Length).Write(buffer.AsSpan(used));
                used += YamuxHeader.Size;
                if (_transport is IGatheringStream gathering)
                {
                    // The Noise stream seals the headers and the payload as separate frames in one socket write: the
                    // payload is encrypted straight from the writer's buffer, and the peer can decrypt it straight
                    // into its stream's buffer.
                    await gathering.WriteAsync(buffer.AsMemory(0, used), data, token).ConfigureAwait(false);
                }
                else
                {
                    await _transport.WriteAsync(buffer.AsMemory(0, used), token).ConfigureAwait(false);
                    await _transport.WriteAsync(data, token).ConfigureAwait(false);
                }
                used = 0;
                await _transport.FlushAsync(token).ConfigureAwait(false);
            }
            if (used > 0)
            {
                await WriteTransportAsync(buffer, used, token).ConfigureAwait(false);
            }
            return true;
        }
        catch (Exception e) when (IsTransportFailure(e))
        {
            Close(new SecureMeshException(SecureMeshErrorKind.Network, "the connection broke while sending", e), null, graceful: false, "the connection broke while sending");
            return false;
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
            _transportLock.Release();
        }
    }

    /// <summary>Under the transport lock: puts the queued control frames into <paramref name="buffer"/> (writing it out when full); returns the bytes left in it.</summary>
    private async ValueTask<int> DrainQueueAsync(byte[] buffer, CancellationToken token)
    {
        var reader = _sendQueue.Reader;
        var used = 0;
        while (reader.TryRead(out var frame))
        {
            if (Volatile.Read(ref _abortSend))
            {
                CountOut(frame);
                continue;
            }
            YamuxHeader header;
            if (frame.Kind == OutKind.Control)
            {
                CountOut(frame);
                header = new YamuxHeader(frame.Type, frame.Flags, frame.StreamId, frame.Value);
            }
            else
            {
                var credit = frame.Stream!.TakeCredit();
                if (credit == 0)
                {
                    continue;
                }
                header = new YamuxHeader(YamuxFrameType.WindowUpdate, YamuxFlags.None, frame.StreamId, credit);
            }
            if (buffer.Length - used < YamuxHeader.Size)
            {
                await WriteTransportAsync(buffer, used, token).ConfigureAwait(false);
                used = 0;
            }
            header.Write(buffer.AsSpan(used));
            used += YamuxHeader.Size;
        }
        return used;
    }

    private async ValueTask WriteTransportAsync(byte[] buffer, int count, CancellationToken token)
    {
        await _transport.WriteAsync(buffer.AsMemory(0, count), token).ConfigureAwait(false);
        await _transport.FlushAsync(token).ConfigureAwait(false);
    }

    private void CountOut(in OutFrame frame)
    {
        if (frame.Type == YamuxFrameType.Ping && frame.Flags == YamuxFlags.Ack)
        {
            Interlocked.Decrement(ref _queuedPongs);
        }
        else if (frame.Type == YamuxFrameType.WindowUpdate && frame.Stream is null && frame.Flags == YamuxFlags.Rst && frame.Value == RefusalMarker)
        {
            Interlocked.Decrement(ref _queuedRefusals);
        }
    }

    private static bool IsTransportFailure(Exception e) =>
        e is IOException or ObjectDisposedException or SocketException or OperationCanceledException or SecureMeshException or NotSupportedException;

    // ---- Read loop: parses every frame from the peer ----

    private async Task ReadLoopAsync()
    {
        var token = _shutdownToken;
        try
        {
            while (true)
            {
                if (!await new WakingWait(this, FillAsync(YamuxHeader.Size, frameStart: true, token), default))
                {
                    bool wentAway;
                    lock (_gate)
                    {
                        wentAway = _remoteGoAway;
                    }
                    Close(wentAway ? null : new SecureMeshException(SecureMeshErrorKind.Network, "the peer closed the connection"),
                        null, graceful: true, wentAway ? "the peer went away" : "the peer closed the connection");
                    return;
                }
                var header = YamuxHeader.Read(_readBuffer.AsSpan(_readStart, YamuxHeader.Size));
                _readStart += YamuxHeader.Size;
                switch (header.Type)
                {
                    case YamuxFrameType.Data:
                        await new WakingWait(this, default, OnDataAsync(header, token));
                        break;
                    case YamuxFrameType.WindowUpdate:
                        OnWindowUpdate(header);
                        break;
                    case YamuxFrameType.Ping:
                        OnPing(header);
                        break;
                    case YamuxFrameType.GoAway:
                        if (!OnGoAway(header))
                        {
                            return;
                        }
                        break;
                }
            }
        }
        catch (SecureMeshException e) when (e.Kind == SecureMeshErrorKind.Protocol && e.Message.StartsWith("yamux protocol error", StringComparison.Ordinal))
        {
            Close(e, YamuxGoAwayCode.ProtocolError, graceful: false, e.Message);
        }
        catch (Exception e) when (IsTransportFailure(e))
        {
            var closing = Volatile.Read(ref _closed);
            Close(new SecureMeshException(SecureMeshErrorKind.Network, "the connection broke while receiving", e), null, graceful: false,
                closing ? "closed" : "the connection broke while receiving");
        }
        catch (Exception e)
        {
            Close(new SecureMeshException(SecureMeshErrorKind.Network, "internal error in the yamux read loop", e), YamuxGoAwayCode.InternalError, graceful: false,
                "internal error while receiving: " + e.GetType().Name);
        }
        finally
        {
            FlushWakes();
            _handOffTimer?.Dispose();
            if (_readBuffer is not null && !ReferenceEquals(_readBuffer, _idleReadBuffer))
            {
                ArrayPool<byte>.Shared.Return(_readBuffer);
            }
            _readBuffer = null;
        }
    }

    private async ValueTask OnDataAsync(YamuxHeader header, CancellationToken token)
    {
        var stream = Resolve(header);
        var deliver = false;
        if (stream is not null)
        {
            deliver = stream.AcceptData(header.Length, out var violation);
            if (violation is not null)
            {
                throw YamuxHeader.Protocol(violation);
            }
        }
        else if (header.Length > Options.MaxStreamWindow)
        {
            throw YamuxHeader.Protocol($"{header.Length} bytes of data for stream {header.StreamId} exceed any window");
        }
        var remaining = header.Length;
        while (remaining > 0)
        {
            if (_readEnd == _readStart && deliver && remaining >= DirectReadThreshold && _transport is IImmediateReadStream immediate)
            {
                var direct = await ReceiveIntoReaderAsync(stream!, immediate, remaining, token).ConfigureAwait(false);
                if (direct > 0)
                {
                    remaining -= (uint)direct;
                    _lastReadFilled = true;
                    continue;
                }
                if (Volatile.Read(ref _streamCount) == 1 && stream!.CanSuspendLoop())
                {
                    // The only stream: rather than decrypt its payload into our buffer while its reader is busy, wait
                    // for the reader (it resumes us with its buffer parked); nothing else waits behind this frame.
                    ArmHandOffGrace(stream);
                    if (await new HandOff(this, stream))
                    {
                        continue;
                    }
                }
            }
            if (_readEnd == _readStart && deliver && remaining >= DirectReadThreshold)
            {
                // A large payload goes from the transport straight into a pooled segment of the stream: no copy (the
                // Noise stream decrypts a whole frame into it when the frame fits). One read, not "read exactly": a
                // segment ends where the transport's frame ends, so the next frame can be decrypted in place too.
                var size = (int)Math.Min(remaining, (uint)ReceiveBuffer.SegmentSize);
                var segment = ArrayPool<byte>.Shared.Rent(size);
                int got;
                try
                {
                    got = await new LoopWait(this, _transport.ReadAsync(segment.AsMemory(0, size), token), null);
                }
                catch
                {
                    ArrayPool<byte>.Shared.Return(segment);
                    throw;
                }
                if (got == 0)
                {
                    ArrayPool<byte>.Shared.Return(segment);
                    throw new EndOfStreamException("the connection ended inside a yamux frame");
                }
                if (got >= DirectReadThreshold)
                {
                    stream!.AppendOwned(segment, got);
                }
                else
                {
                    // A short read is copied, so a peer's tiny transport frames never pin a segment each.
                    stream!.Append(segment.AsSpan(0, got));
                    ArrayPool<byte>.Shared.Return(segment);
                }
                remaining -= (uint)got;
                _lastReadFilled = true;
                continue;
            }
            if (_readEnd == _readStart)
            {
                await FillAsync(1, frameStart: false, token).ConfigureAwait(false);
            }
            var n = (int)Math.Min(remaining, (uint)(_readEnd - _readStart));
            if (deliver)
            {
                stream!.Append(_readBuffer.AsSpan(_readStart, n));
            }
            _readStart += n;
            remaining -= (uint)n;
        }
        if (stream is not null)
        {
            ApplyFlags(stream, header.Flags);
        }
    }

    /// <summary>
    /// While the stream's reader waits with room in its buffer, waits for the transport's next bytes and puts them
    /// straight into that buffer (for the Noise stream: a whole frame decrypted into it), with no copy on the way and
    /// no pooled segment; 0 when the reader is not waiting or left meanwhile (the caller then reads into a segment).
    /// </summary>
    private async ValueTask<int> ReceiveIntoReaderAsync(YamuxStream stream, IImmediateReadStream transport, uint remaining, CancellationToken token)
    {
        var max = (int)Math.Min(remaining, int.MaxValue);
        var got = stream.ReceiveImmediately(transport, max);
        if (got > 0 || !stream.HasParkedReader)
        {
            return got;
        }
        await new LoopWait(this, default, transport.WaitReadableAsync(token));
        return stream.ReceiveImmediately(transport, max);
    }

    /// <summary>
    /// Read loop: a stream's reader has what it waits for. Woken at once when much is waiting; otherwise when the read
    /// loop next has to wait for the network, so that frames that came together wake it once, not once each (a wake-up
    /// is a thread hop, dearer than the frames' copying).
    /// </summary>
    internal void WakeReader(YamuxStream stream, bool urgent)
    {
        if (urgent)
        {
            stream.SignalReadable(inline: false);
        }
        else if (!_deferredWakes.Contains(stream))
        {
            _deferredWakes.Add(stream);
        }
    }

    /// <summary>Wakes the readers whose wake-up was deferred, on the thread pool (the read loop is ending).</summary>
    private void FlushWakes()
    {
        foreach (var stream in _deferredWakes)
        {
            stream.SignalReadable(inline: false);
        }
        _deferredWakes.Clear();
    }

    /// <summary>Read loop: the readers whose wake-up was deferred, taken out of the list (which the read loop may use again at once).</summary>
    private DeferredWakes TakeDeferredWakes()
    {
        var count = _deferredWakes.Count;
        DeferredWakes taken = count switch
        {
            0 => default,
            1 => new(_deferredWakes[0], null, 1),
            _ => new(null, ArrayPool<YamuxStream>.Shared.Rent(count), count),
        };
        if (taken.Several is { } several)
        {
            _deferredWakes.CopyTo(several);
        }
        _deferredWakes.Clear();
        return taken;
    }

    [ThreadStatic]
    private static bool t_wakingInline;

    /// <summary>
    /// Once the read loop waits for the network (its continuation registered, so it goes on without this thread):
    /// wakes the readers taken from the deferred list on this thread, which has nothing else to do. A reader's code runs
    /// here up to its next wait instead of being queued to another pool thread, sparing the hand-over (a pool worker
    /// woken, a thread switch) that the bare Noise stream's reader does not pay either. Nested on one thread (a
    /// transport that completes a read inside a write), the wakes go to the pool, so the stack stays shallow.
    /// </summary>
    private static void WakeInline(DeferredWakes wakes)
    {
        if (wakes.Count == 0)
        {
            return;
        }
        // Inline only in the default execution context (the read loop is started without its creator's), so a
        // reader's code never sees AsyncLocal values it would not see on the pool.
        var nested = t_wakingInline;
        var inline = !nested && ExecutionContext.Capture() is null;
        t_wakingInline = true;
        try
        {
            if (wakes.Single is { } single)
            {
                single.SignalReadable(inline);
                return;
            }
            for (var i = 0; i < wakes.Count; i++)
            {
                wakes.Several![i].SignalReadable(inline);
            }
        }
        finally
        {
            t_wakingInline = nested;
            if (wakes.Several is { } several)
            {
                ArrayPool<YamuxStream>.Shared.Return(several, clearArray: true);
            }
        }
    }

    /// <summary>How long the read loop waits at most for a stream's reader to come back (see <see cref="HandOff"/>).</summary>
    private static readonly TimeSpan HandOffGrace = TimeSpan.FromMilliseconds(1);

    /// <summary>
    /// Read loop: before it waits for <paramref name="stream"/>'s reader, makes sure it goes on by itself if the reader
    /// does not come back soon. A real timer whatever the session's clock: it bounds a scheduling wait, not protocol time.
    /// </summary>
    private void ArmHandOffGrace(YamuxStream stream)
    {
        Volatile.Write(ref _handOffStream, stream);
        _handOffTimer ??= new Timer(static s => Volatile.Read(ref ((YamuxSession)s!)._handOffStream)?.ReleaseLoop(refuse: true), this, Timeout.Infinite, Timeout.Infinite);
        _handOffTimer.Change(HandOffGrace, Timeout.InfiniteTimeSpan);
    }

    /// <summary>
    /// Runs a read loop that waited for this reader (<see cref="YamuxStream.TrySuspendLoop"/>) on the reader's thread,
    /// up to the loop's next wait. The readers it wakes meanwhile are woken on the pool (nested, see
    /// <see cref="WakeInline"/>); this reader is not waiting yet, so its own wake-up only marks its signal. Outside the
    /// default execution context the loop goes to the pool instead.
    /// </summary>
    internal static void ResumeLoop(Action loop)
    {
        if (ExecutionContext.Capture() is not null)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static c => c(), loop, preferLocal: true);
            return;
        }
        var nested = t_wakingInline;
        t_wakingInline = true;
        try
        {
            loop();
        }
        finally
        {
            t_wakingInline = nested;
        }
    }

    /// <summary>
    /// Awaited by the read loop to wait for a stream's reader (true), or not at all (false: the reader is not expected
    /// back). Only the continuation is kept here; the reader's deferred wake-up is delivered by the read loop's own
    /// await (<see cref="WakingWait"/>) once the loop's whole chain has yielded.
    /// </summary>
    private readonly struct HandOff(YamuxSession session, YamuxStream stream) : ICriticalNotifyCompletion
    {
        public bool IsCompleted => !stream.CanSuspendLoop();

        public HandOff GetAwaiter() => this;

        public bool GetResult() => stream.TakeLoopSuspended();

        public void OnCompleted(Action continuation) => UnsafeOnCompleted(continuation);

        public void UnsafeOnCompleted(Action continuation)
        {
            // Before the reader can see the continuation (and run the loop on its own thread): the loop's list is ours until then.
            session.StashWakesForYield();
            if (!stream.TrySuspendLoop(continuation))
            {
                ThreadPool.UnsafeQueueUserWorkItem(static c => c(), continuation, preferLocal: true);
            }
        }
    }

    private readonly record struct DeferredWakes(YamuxStream? Single, YamuxStream[]? Several, int Count);

    /// <summary>
    /// The deferred wakes the read loop's innermost wait took (<see cref="StashWakesForYield"/>) on this thread, on their
    /// way to the loop's outermost await (<see cref="WakingWait"/>), which runs right after on the same thread as the
    /// awaits unwind; no other code runs in between, so it is empty whenever anything else runs.
    /// </summary>
    [ThreadStatic]
    private static DeferredWakes t_yieldWakes;

    /// <summary>
    /// Read loop, at a wait that may go on without this thread (before its continuation can run anywhere): takes the
    /// deferred wakes out of the loop's list, which another thread running the loop on may use from then on.
    /// </summary>
    private void StashWakesForYield()
    {
        var taken = TakeDeferredWakes();
        if (t_yieldWakes.Count > 0)
        {
            // Not expected (every stash is taken by the outermost await): deliver rather than lose them.
            WakeOnPool(t_yieldWakes);
        }
        t_yieldWakes = taken;
    }

    /// <summary>Read loop, going on on this thread after all: the stashed wakes go back to its list.</summary>
    private void UnstashWakes()
    {
        var wakes = t_yieldWakes;
        if (wakes.Count == 0)
        {
            return;
        }
        t_yieldWakes = default;
        if (wakes.Single is { } single)
        {
            WakeReader(single, urgent: false);
            return;
        }
        for (var i = 0; i < wakes.Count; i++)
        {
            WakeReader(wakes.Several![i], urgent: false);
        }
        ArrayPool<YamuxStream>.Shared.Return(wakes.Several!, clearArray: true);
    }

    private static void WakeOnPool(DeferredWakes wakes)
    {
        if (wakes.Single is { } single)
        {
            single.SignalReadable(inline: false);
            return;
        }
        for (var i = 0; i < wakes.Count; i++)
        {
            wakes.Several![i].SignalReadable(inline: false);
        }
        ArrayPool<YamuxStream>.Shared.Return(wakes.Several!, clearArray: true);
    }

    /// <summary>
    /// A wait inside the read loop (a transport read, or <c>task</c> when not null), without the caller's context:
    /// when it does not complete at once, stashes the deferred wakes before registering the continuation.
    /// </summary>
    private readonly struct LoopWait(YamuxSession session, ValueTask<int> read, Task? task) : ICriticalNotifyCompletion
    {
        public bool IsCompleted => task?.IsCompleted ?? read.IsCompleted;

        public LoopWait GetAwaiter() => this;

        public int GetResult()
        {
            if (task is null)
            {
                return read.GetAwaiter().GetResult();
            }
            task.GetAwaiter().GetResult();
            return 0;
        }

        public void OnCompleted(Action continuation) => UnsafeOnCompleted(continuation);

        public void UnsafeOnCompleted(Action continuation)
        {
            session.StashWakesForYield();
            if (task is null)
            {
                read.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(continuation);
            }
            else
            {
                task.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(continuation);
            }
        }
    }

    /// <summary>
    /// How the read loop awaits a frame's reading (<c>header</c>: the next header; <c>data</c>: a data frame's payload):
    /// without the caller's context, and when it does not complete at once (the transport has to wait), it registers
    /// the read loop's continuation first and then wakes the readers its innermost wait stashed, on this thread
    /// (<see cref="WakeInline"/>). Only the read loop's own awaits wake: it is started on the pool, so once its
    /// continuation is registered nothing on this thread's stack belongs to it, and it goes on elsewhere whatever a
    /// woken reader's code does here.
    /// </summary>
    private readonly struct WakingWait(YamuxSession session, ValueTask<bool> header, ValueTask data) : ICriticalNotifyCompletion
    {
        public bool IsCompleted => header.IsCompleted && data.IsCompleted;

        public WakingWait GetAwaiter() => this;

        public bool GetResult()
        {
            // Completed before the loop registered here (it went on meanwhile on the thread that completed it, and is
            // done there): the loop is ours again, so wakes stashed by its yield go back to its list.
            session.UnstashWakes();
            data.GetAwaiter().GetResult();
            return header.GetAwaiter().GetResult();
        }

        public void OnCompleted(Action continuation) => UnsafeOnCompleted(continuation);

        public void UnsafeOnCompleted(Action continuation)
        {
            if (!header.IsCompleted)
            {
                header.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(continuation);
            }
            else
            {
                data.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(continuation);
            }
            var wakes = t_yieldWakes;
            t_yieldWakes = default;
            WakeInline(wakes);
        }
    }

    private void OnWindowUpdate(YamuxHeader header)
    {
        var stream = Resolve(header);
        if (stream is null)
        {
            return;
        }
        if (!stream.AddSendWindow(header.Length))
        {
            throw YamuxHeader.Protocol($"a window update of {header.Length} on stream {header.StreamId} overflows the window past 2^32-1");
        }
        ApplyFlags(stream, header.Flags);
    }

    private void OnPing(YamuxHeader header)
    {
        switch (header.Flags & (YamuxFlags.Syn | YamuxFlags.Ack))
        {
            case YamuxFlags.Syn:
                var pending = Interlocked.Increment(ref _queuedPongs);
                if (pending > MaxQueuedPongs)
                {
                    // A peer pinging faster than it reads our answers gets no more answers, not more of our memory.
                    Interlocked.Decrement(ref _queuedPongs);
                    YamuxLog.PingDropped(_logger, pending - 1);
                    return;
                }
                Enqueue(new OutFrame(OutKind.Control, YamuxFrameType.Ping, YamuxFlags.Ack, 0, header.Length, null));
                break;
            case YamuxFlags.Ack:
                TaskCompletionSource<TimeSpan>? answer = null;
                TimeSpan rtt = default;
                lock (_gate)
                {
                    if (_pings.Remove(header.Length, out var ping))
                    {
                        answer = ping.Answer;
                        rtt = Time.GetElapsedTime(ping.SentAt);
                    }
                }
                if (answer is null)
                {
                    YamuxLog.UnexpectedPong(_logger, header.Length);
                    return;
                }
                Interlocked.Exchange(ref _rttTicks, rtt.Ticks);
                answer.TrySetResult(rtt);
                break;
            default:
                throw YamuxHeader.Protocol("a ping with neither or both of SYN and ACK");
        }
    }

    /// <summary>False when the session ends here.</summary>
    private bool OnGoAway(YamuxHeader header)
    {
        YamuxLog.RemoteGoAway(_logger, header.Length);
        if (header.Length == (uint)YamuxGoAwayCode.Normal)
        {
            lock (_gate)
            {
                _remoteGoAway = true;
            }
            return true;
        }
        var what = header.Length switch
        {
            (uint)YamuxGoAwayCode.ProtocolError => "a protocol error on our side",
            (uint)YamuxGoAwayCode.InternalError => "an internal error",
            _ => $"unknown code {header.Length}",
        };
        Close(new SecureMeshException(SecureMeshErrorKind.Network, $"the peer ended the yamux session ({what})"), null, graceful: false, $"the peer ended the session ({what})");
        return false;
    }

    /// <summary>
    /// The stream a data or window-update frame is for: a new one for SYN (or null when refused), an open one, or null
    /// for a stream that has ended (its late frames are dropped). Anything else is a protocol error.
    /// </summary>
    private YamuxStream? Resolve(YamuxHeader header)
    {
        var id = header.StreamId;
        var peerParity = (id % 2 == 1) != IsClient;
        if ((header.Flags & YamuxFlags.Syn) != 0)
        {
            if (!peerParity)
            {
                throw YamuxHeader.Protocol($"SYN for stream {id}, an ID of our parity");
            }
            if ((header.Flags & YamuxFlags.Ack) != 0)
            {
                throw YamuxHeader.Protocol($"SYN and ACK together on stream {id}");
            }
            YamuxStream? created = null;
            string refusal;
            lock (_gate)
            {
                if (_streams.ContainsKey(id))
                {
                    throw YamuxHeader.Protocol($"SYN for stream {id}, which is open");
                }
                if (!_inboundIds.TryMark(id))
                {
                    throw YamuxHeader.Protocol($"SYN reuses stream ID {id}");
                }
                if (_closed)
                {
                    refusal = "the session is closing";
                }
                else if (_streamCount >= Options.MaxStreams)
                {
                    refusal = $"{Options.MaxStreams} streams are open";
                }
                else
                {
                    refusal = "";
                    created = new YamuxStream(this, id, outbound: false, Time.GetTimestamp());
                    _streams.Add(id, created);
                    _streamCount++;
                }
            }
            if (created is null)
            {
                Refuse(id, refusal);
                return null;
            }
            _acceptQueue.Writer.TryWrite(created);
            return created;
        }
        lock (_gate)
        {
            if (_streams.TryGetValue(id, out var stream))
            {
                return stream;
            }
            var neverOpened = peerParity ? _inboundIds.IsBeyondHighest(id) : id >= _nextStreamId;
            if (neverOpened)
            {
                throw YamuxHeader.Protocol($"{header.Type} frame for stream {id}, which was never opened");
            }
            return null;
        }
    }

    /// <summary>Marks a refusal frame, so the queue knows how many are waiting.</summary>
    private const uint RefusalMarker = 0;

    private void Refuse(uint id, string reason)
    {
        YamuxLog.StreamRefused(_logger, id, reason);
        if (Interlocked.Increment(ref _queuedRefusals) > Options.MaxStreams)
        {
            throw YamuxHeader.Protocol("the peer keeps opening streams beyond the limit without reading our refusals");
        }
        Enqueue(new OutFrame(OutKind.Control, YamuxFrameType.WindowUpdate, YamuxFlags.Rst, id, RefusalMarker, null));
    }

    private void ApplyFlags(YamuxStream stream, YamuxFlags flags)
    {
        if ((flags & YamuxFlags.Ack) != 0 && stream.IsOutbound)
        {
            ReleaseBacklog(stream);
        }
        if ((flags & YamuxFlags.Rst) != 0)
        {
            stream.OnRemoteReset();
            TryRetire(stream);
            ReleaseBacklog(stream);
        }
        else if ((flags & YamuxFlags.Fin) != 0)
        {
            stream.OnRemoteFin();
            TryRetire(stream);
        }
    }

    /// <summary>
    /// Makes at least <paramref name="needed"/> bytes readable at _readStart. False only for a clean end of the
    /// transport between frames; an end inside a frame is an <see cref="EndOfStreamException"/>.
    /// </summary>
    private async ValueTask<bool> FillAsync(int needed, bool frameStart, CancellationToken token)
    {
        while (_readEnd - _readStart < needed)
        {
            var have = _readEnd - _readStart;
            // Busy (the last read filled the buffer): read into the large pooled buffer. Quiet: into the small one, so
            // an idle session holds 512 bytes, not 64 KiB.
            var busy = _lastReadFilled;
            var current = _readBuffer;
            var isIdle = ReferenceEquals(current, _idleReadBuffer);
            var target = current is null ? (busy ? ArrayPool<byte>.Shared.Rent(ReadBufferSize) : _idleReadBuffer)
                : isIdle && busy ? ArrayPool<byte>.Shared.Rent(ReadBufferSize)
                : !isIdle && !busy && have <= IdleReadBufferSize ? _idleReadBuffer
                : current;
            if (!ReferenceEquals(target, current) || _readStart > 0)
            {
                if (current is not null)
                {
                    current.AsSpan(_readStart, have).CopyTo(target);
                    if (!ReferenceEquals(target, current) && !isIdle)
                    {
                        ArrayPool<byte>.Shared.Return(current);
                    }
                }
                _readBuffer = target;
                _readStart = 0;
                _readEnd = have;
            }
            var free = _readBuffer!.Length - _readEnd;
            var n = await new LoopWait(this, _transport.ReadAsync(_readBuffer.AsMemory(_readEnd, free), token), null);
            if (n == 0)
            {
                if (frameStart && have == 0)
                {
                    return false;
                }
                throw new EndOfStreamException("the connection ended inside a yamux frame");
            }
            _readEnd += n;
            _lastReadFilled = n == free;
        }
        return true;
    }

    // ---- Keep-alive: measures the round trip (for window tuning) and finds a peer that stopped answering ----

    private async Task KeepAliveLoopAsync()
    {
        var token = _shutdownToken;
        // The normal end of a session ends this loop too; that is awaited without throwing (a first-chance exception
        // on every connection closed otherwise). Only a missed answer ends the session from here.
        while (!Volatile.Read(ref _closed))
        {
            if (SendPing(out var value) is not { } answer)
            {
                return;
            }
            var answered = answer.WaitAsync(Options.KeepAliveTimeout, Time, token);
            await ((Task)answered).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            ForgetPing(value);
            if (answered.Exception?.InnerException is TimeoutException)
            {
                Close(new SecureMeshException(SecureMeshErrorKind.Network, $"the peer did not answer a yamux ping within {Options.KeepAliveTimeout.TotalSeconds:0.#} s"),
                    null, graceful: false, "keep-alive timeout");
                return;
            }
            if (!answered.IsCompletedSuccessfully)
            {
                // The session ended (the answer failed with it) or is shutting down.
                return;
            }
            await Task.Delay(Options.KeepAliveInterval, Time, token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }
}
