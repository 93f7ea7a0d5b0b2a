using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using SecureMesh.Core;
using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Wire;
using SecureMesh.Node.Network;

namespace SecureMesh.Node.Transfer;

/// <summary>
/// The application protocol on one session with a trusted peer (<see cref="TransferProtocol.Transfer"/>: one long-lived
/// stream per connection, opened by the dialler): both sides send Hello first; then any number of
/// requests travel each way at once, paired with their responses by request ID. Searches go on a stream of their own
/// (<see cref="TransferProtocol.Search"/>). Requests from the peer are served
/// concurrently (at most <see cref="TransferOptions.MaxConcurrentServes"/>; beyond that the connection is not read,
/// which pushes back on the peer). A message that does not decode gets an Error reply; a malformed one also ends the
/// session. Nothing a peer sends raises anything but a closed session.
/// </summary>
public sealed class ProtocolSession
{
    /// <summary>
    /// The one answer for content a peer cannot have: not in the catalog, or in no share the peer may see. Both are
    /// the same bytes on the wire, so a peer learns nothing about content outside its audience.
    /// </summary>
    internal const string NotShared = "content not shared here";

    /// <summary>Capabilities this node announces.</summary>
    public static readonly IReadOnlyList<string> Capabilities = ["search", "manifest", "have", "chunk", "cancel"];

    private readonly PeerSession _session;
    private readonly MessageStream _channel;
    private readonly IServingHost _host;
    private readonly TransferOptions _options;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<uint, TaskCompletionSource<Reply>> _pending = new();
    private readonly ConcurrentDictionary<uint, ChunkDestination> _chunkBuffers = new();
    private readonly ConcurrentDictionary<uint, CancellationTokenSource> _serving = new();
    private readonly ConcurrentDictionary<uint, string> _waiting = new();
    private readonly ConcurrentDictionary<uint, byte> _cut = new();
    private readonly ConcurrentDictionary<string, long> _recentContent = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _serveSlots;
    private readonly TaskCompletionSource<Hello> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TokenBucket _upload;
    private readonly CancellationTokenSource _closed = new();
    private readonly MessageStream.MessagePlacement _place;
    private readonly ServedFiles _files;
    private int _nextId;

    internal ProtocolSession(PeerSession session, MessageStream channel, IServingHost host, TransferOptions options, ILogger logger)
    {
        _session = session;
        _channel = channel;
        _host = host;
        _options = options;
        _logger = logger;
        _serveSlots = new SemaphoreSlim(options.MaxConcurrentServes, options.MaxConcurrentServes);
        _upload = new TokenBucket(options.Time);
        _place = Place;
        _files = new ServedFiles(options.Time, options.ServedFileIdle);
    }

    internal readonly record struct Reply(WireMessage Message, IMemoryOwner<byte>? Owner);

    /// <summary>The peer.</summary>
    public PeerId PeerId => _session.PeerId;

    /// <summary>The peer's hello, once received.</summary>
    public Task<Hello> Ready => _ready.Task;

    /// <summary>True once hellos have been exchanged and until the session closes.</summary>
    public bool IsOpen => _ready.Task.IsCompletedSuccessfully && !_closed.IsCancellationRequested;

    /// <summary>Cancelled when the session ends.</summary>
    public CancellationToken Closed => _closed.Token;

    internal long ChunksServed;

    /// <summary>Runs the session until the connection closes or <paramref name="cancellationToken"/> fires.</summary>
    internal async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            await SendAsync(new Hello(0, WireLimits.ProtocolVersion, Capabilities, WireLimits.DefaultMaxMessageSize), cancellationToken).ConfigureAwait(false);
            Hello hello;
            using (var helloTimeout = new CancellationTokenSource(_options.HelloTimeout, _options.Time))
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(helloTimeout.Token, cancellationToken))
            {
                using var first = await _channel.ReceiveAsync(linked.Token).ConfigureAwait(false)
                    ?? throw new SecureMeshException(SecureMeshErrorKind.Network, "the peer closed the stream before its hello");
                WireMessage message;
                try
                {
                    message = WireCodec.Decode(first.Memory.Span);
                }
                catch (SecureMeshException e)
                {
                    await TrySendErrorAsync(PeekRequestId(first.Memory.Span), WireErrorCode.BadRequest, e.Message, cancellationToken).ConfigureAwait(false);
                    throw;
                }
                if (message is RefusedMessage)
                {
                    // The peer has blocked this node: it says so once and hangs up.
                    _session.MarkRefusedByPeer();
                    throw new SecureMeshException(SecureMeshErrorKind.Unauthorized, "the peer refused this node");
                }
                if (message is not Hello h)
                {
                    await TrySendErrorAsync(message.RequestId, WireErrorCode.BadRequest, "expected hello first", cancellationToken).ConfigureAwait(false);
                    throw new SecureMeshException(SecureMeshErrorKind.Protocol, "peer did not start with hello");
                }
                hello = h;
            }
            if (hello.Version != WireLimits.ProtocolVersion)
            {
                await TrySendErrorAsync(0, WireErrorCode.UnsupportedVersion, $"this node speaks version {WireLimits.ProtocolVersion}", cancellationToken).ConfigureAwait(false);
                throw new SecureMeshException(SecureMeshErrorKind.Protocol, $"peer speaks protocol version {hello.Version}");
            }
            _session.MarkEstablished();
            _ready.TrySetResult(hello);
            TransferLog.SessionReady(_logger, PeerId.Text, hello.Version);
            await ReceiveLoopAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SecureMeshException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            _ready.TrySetException(new SecureMeshException(_session.RefusedByPeer ? SecureMeshErrorKind.Unauthorized : SecureMeshErrorKind.Network, $"session with {PeerId} ended: {e.Message}"));
            if (e is SecureMeshException { Kind: SecureMeshErrorKind.Protocol })
            {
                TransferLog.ProtocolError(_logger, PeerId.Text, e.Message);
            }
        }
        finally
        {
            await _closed.CancelAsync().ConfigureAwait(false);
            _files.Dispose();
            foreach (var id in _pending.Keys)
            {
                if (_pending.TryRemove(id, out var waiter))
                {
                    waiter.TrySetException(new SecureMeshException(SecureMeshErrorKind.Network, $"session with {PeerId} closed"));
                }
            }
            foreach (var cts in _serving.Values)
            {
                try
                {
                    await cts.CancelAsync().ConfigureAwait(false);
                }
                catch (ObjectDisposedException)
                {
                }
            }
        }
    }

    private async Task ReceiveLoopAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var owner = await _channel.ReceiveAsync(_place, cancellationToken).ConfigureAwait(false)
                ?? throw new SecureMeshException(SecureMeshErrorKind.Network, "the peer closed the stream");
            WireMessage message;
            try
            {
                message = WireCodec.Decode(owner.Memory);
            }
            catch (SecureMeshException e)
            {
                var span = owner.Memory.Span;
                var knownType = span.Length > 0 && Enum.IsDefined((WireMessageType)span[0]);
                var requestId = PeekRequestId(span);
                owner.Dispose();
                await TrySendErrorAsync(requestId, WireErrorCode.BadRequest, e.Message, cancellationToken).ConfigureAwait(false);
                if (knownType)
                {
                    // A known message that does not parse is a broken or hostile peer: end the session.
                    throw;
                }
                // An unknown type may be a newer peer's extension: refuse it and carry on.
                TransferLog.ProtocolError(_logger, PeerId.Text, e.Message);
                continue;
            }
            switch (message)
            {
                case SearchResponse or ManifestResponse or HaveResponse or ChunkResponse or ErrorMessage:
                    if (_pending.TryRemove(message.RequestId, out var waiter))
                    {
                        if (!waiter.TrySetResult(new Reply(message, owner)))
                        {
                            owner.Dispose();
                        }
                    }
                    else
                    {
                        // A response nobody waits for any more (cancelled or timed out).
                        owner.Dispose();
                    }
                    break;
                case CancelRequest:
                    owner.Dispose();
                    if (_serving.TryGetValue(message.RequestId, out var serving))
                    {
                        try
                        {
                            await serving.CancelAsync().ConfigureAwait(false);
                        }
                        catch (ObjectDisposedException)
                        {
                        }
                    }
                    break;
                case RefusedMessage:
                    // Blocked mid-session: the peer cuts us next.
                    owner.Dispose();
                    _session.MarkRefusedByPeer();
                    throw new SecureMeshException(SecureMeshErrorKind.Unauthorized, "the peer refused this node");
                case Hello:
                    owner.Dispose();
                    await TrySendErrorAsync(message.RequestId, WireErrorCode.BadRequest, "hello was already exchanged", cancellationToken).ConfigureAwait(false);
                    break;
                default:
                    // Requests carry no byte payload that outlives decoding.
                    owner.Dispose();
                    await _serveSlots.WaitAsync(cancellationToken).ConfigureAwait(false);
                    _ = ServeAsync(message, cancellationToken);
                    break;
            }
        }
    }

    /// <summary>
    /// Where an incoming message goes: the reply to a chunk request made with a <see cref="ChunkDestination"/> goes into
    /// its buffer, the chunk bytes on the alignment boundary; everything else into a pooled buffer (null). Only the
    /// header's request ID is looked at here; the message is decoded and checked as any other once it is in.
    /// </summary>
    private IMemoryOwner<byte>? Place(ReadOnlySpan<byte> head, int length)
    {
        if (_chunkBuffers.IsEmpty || head.Length < 2 || head[0] != (byte)WireMessageType.ChunkResponse)
        {
            return null;
        }
        // type | varint request ID | varint index | varint data length | data | ...
        var pos = 1;
        ulong requestId = 0;
        for (var field = 0; field < 3; field++)
        {
            if (Varint.Decode(head[pos..], Varint.MaxLength64, out var value, out var used) != VarintStatus.Ok)
            {
                return null;
            }
            requestId = field == 0 ? value : requestId;
            pos += used;
        }
        return requestId <= uint.MaxValue && _chunkBuffers.TryGetValue((uint)requestId, out var into) ? into.TryClaim(pos, length) : null;
    }

    /// <summary>The request ID of a message that failed to decode, when it got that far, to answer it; 0 otherwise.</summary>
    private static uint PeekRequestId(ReadOnlySpan<byte> span) =>
        span.Length > 1 && Varint.Decode(span[1..], Varint.MaxLength, out var value, out _) == VarintStatus.Ok && value <= uint.MaxValue
            ? (uint)value
            : 0;

    private async Task ServeAsync(WireMessage request, CancellationToken sessionToken)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(sessionToken);
        _serving[request.RequestId] = cts;
        try
        {
            var ct = cts.Token;
            switch (request)
            {
                case SearchRequest search:
                {
                    var hits = _host.Search(PeerId, search.Query, search.Limit);
                    var results = new List<SearchResult>(hits.Count);
                    foreach (var hit in hits)
                    {
                        if (!_host.IsBlocked(hit.ContentId))
                        {
                            results.Add(new SearchResult(ContentId.Parse(hit.ContentId), hit.Name, hit.Size));
                        }
                    }
                    await SendAsync(new SearchResponse(request.RequestId, results), ct).ConfigureAwait(false);
                    break;
                }
                case ManifestRequest m:
                {
                    if (await RefuseAsync(request.RequestId, m.ContentId, ct).ConfigureAwait(false) is { } content)
                    {
                        await SendAsync(new ManifestResponse(request.RequestId, content.Manifest), ct).ConfigureAwait(false);
                    }
                    break;
                }
                case HaveRequest h:
                {
                    if (await RefuseAsync(request.RequestId, h.ContentId, ct).ConfigureAwait(false) is { } content)
                    {
                        await SendAsync(HaveResponse.ForAll(request.RequestId, content.Tree.LeafCount), ct).ConfigureAwait(false);
                    }
                    break;
                }
                case ChunkRequest c:
                    _options.ChunkServed?.Invoke(PeerId.Text, c.ContentId.Text, c.Index);
                    if (await RefuseAsync(request.RequestId, c.ContentId, ct).ConfigureAwait(false) is { } chunkContent)
                    {
                        await ServeChunkAsync(c, chunkContent, ct).ConfigureAwait(false);
                    }
                    break;
                default:
                    await TrySendErrorAsync(request.RequestId, WireErrorCode.BadRequest, $"{request.Type} is not a request", ct).ConfigureAwait(false);
                    break;
            }
        }
        catch (OperationCanceledException)
        {
            if (_cut.ContainsKey(request.RequestId) && !sessionToken.IsCancellationRequested)
            {
                // Cut because the peer may no longer see this content: answered like content that is not here, so its
                // download stops now instead of waiting out a timeout.
                await TrySendErrorAsync(request.RequestId, WireErrorCode.NotFound, NotShared, sessionToken).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is SecureMeshException or IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            TransferLog.ServeFailed(_logger, PeerId.Text, e.Message);
            await TrySendErrorAsync(request.RequestId, WireErrorCode.Internal, "the request could not be served", sessionToken).ConfigureAwait(false);
        }
        finally
        {
            _serving.TryRemove(request.RequestId, out _);
            _waiting.TryRemove(request.RequestId, out _);
            _cut.TryRemove(request.RequestId, out _);
            cts.Dispose();
            _serveSlots.Release();
        }
    }

    /// <summary>The content to serve, or null after sending the reason it cannot be served.</summary>
    private async Task<SharedContent?> RefuseAsync(uint requestId, ContentId id, CancellationToken ct)
    {
        // Asked first: content outside the peer's audience gets the very reply unknown content gets, blocked or not.
        if (!_host.CanSee(PeerId, id.Text))
        {
            await TrySendErrorAsync(requestId, WireErrorCode.NotFound, NotShared, ct).ConfigureAwait(false);
            return null;
        }
        if (_host.IsBlocked(id.Text))
        {
            await TrySendErrorAsync(requestId, WireErrorCode.Blocked, "content is blocked", ct).ConfigureAwait(false);
            return null;
        }
        var content = _host.Find(PeerId, id);
        if (content is null)
        {
            await TrySendErrorAsync(requestId, WireErrorCode.NotFound, NotShared, ct).ConfigureAwait(false);
            return null;
        }
        Remember(id.Text);
        return content;
    }

    private async Task ServeChunkAsync(ChunkRequest request, SharedContent content, CancellationToken ct)
    {
        var tree = content.Tree;
        if (request.Index < 0 || request.Index >= tree.LeafCount)
        {
            await TrySendErrorAsync(request.RequestId, WireErrorCode.BadRequest, $"chunk index {request.Index} is outside 0..{tree.LeafCount - 1}", ct).ConfigureAwait(false);
            return;
        }
        var length = ChunkLayout.ChunkLength(tree.FileSize, tree.ChunkSize, request.Index);
        var proofCount = tree.ProofLength(request.Index);
        // The response is built in place, the chunk read straight into it: the same bytes WireCodec.Encode writes for
        // a ChunkResponse (type | varint id | varint index | varint length | data | varint count | proof).
        var header = 1 + Varint.Size(request.RequestId) + Varint.Size((ulong)request.Index) + Varint.Size((ulong)length);
        var total = header + length + Varint.Size((ulong)proofCount) + (proofCount * MerkleTree.HashLength);
        var buffer = ArrayPool<byte>.Shared.Rent(total);
        try
        {
            var span = buffer.AsSpan(0, total);
            span[0] = (byte)WireMessageType.ChunkResponse;
            var pos = 1;
            pos += Varint.Write(span[pos..], request.RequestId);
            pos += Varint.Write(span[pos..], (ulong)request.Index);
            pos += Varint.Write(span[pos..], (ulong)length);
            var data = span.Slice(pos, length);
            if (!ReadChunk(content, request.Index, data))
            {
                _host.ContentChanged(content);
                await TrySendErrorAsync(request.RequestId, WireErrorCode.Changed, "the file changed since it was indexed; it is being re-indexed", ct).ConfigureAwait(false);
                return;
            }
            _options.TamperOutgoingChunk?.Invoke(request.Index, data);
            pos += length;
            pos += Varint.Write(span[pos..], (ulong)proofCount);
            pos += tree.WriteProof(request.Index, span[pos..]);
            // While it waits for its turn under the upload limit, an audience change may cut it (see Reauthorize).
            _waiting[request.RequestId] = request.ContentId.Text;
            await _upload.TakeAsync(total, _host.UploadLimit(), ct).ConfigureAwait(false);
            if (!_waiting.TryRemove(request.RequestId, out _))
            {
                // Claimed by a cut just as its turn came: the cut's answer is sent by ServeAsync.
                throw new OperationCanceledException();
            }
            if (!_host.CanSee(PeerId, request.ContentId.Text))
            {
                // The audience changed while this chunk waited for its turn: not one more byte of it.
                await TrySendErrorAsync(request.RequestId, WireErrorCode.NotFound, NotShared, ct).ConfigureAwait(false);
                return;
            }
            await SendRawAsync(buffer.AsMemory(0, pos), ct).ConfigureAwait(false);
            Interlocked.Increment(ref ChunksServed);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Reads chunk <paramref name="index"/> and checks it against the index; false when the file is not what was indexed.
    /// The file is opened below its shared root without following any link and without blocking, and kept open for
    /// the next chunks while the path still names it (<see cref="ServedFiles"/>); the handle must be the regular file
    /// (device, inode, size, time) that was indexed: a path swapped for a link, a FIFO or another file is never read.
    /// </summary>
    private bool ReadChunk(SharedContent content, long index, Span<byte> destination)
    {
        bool unchanged;
        try
        {
            if (!_files.Read(content, ChunkLayout.ChunkOffset(content.Tree.ChunkSize, index), destination, out var before, out var after))
            {
                _files.Forget(content);
                return false;
            }
            // A write stamps the ctime before it changes a byte, so a ctime unchanged after the read means none of these
            // bytes changed since the file was hashed (see SharedContent.IsUnchangedSinceIndexed).
            unchanged = content.IsUnchangedSinceIndexed(before) && content.IsUnchangedSinceIndexed(after);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or SecureMeshException)
        {
            _files.Forget(content);
            return false;
        }
        if (unchanged)
        {
            return true;
        }
        // Same file, size and mtime prove nothing about its bytes (the mtime can be set back): they must still hash to
        // the indexed leaf.
        _options.ChunkRehashed?.Invoke(index);
        if (content.Tree.VerifyLeaf(index, destination))
        {
            return true;
        }
        _files.Forget(content);
        return false;
    }

    /// <summary>
    /// Applies a change of who may see what: chunks of content this peer may no longer see that wait for their turn
    /// under the upload limit are cut and answered "not found" at once (its download stops instead of timing out);
    /// every other request checks the audience itself before it sends anything, and a send is never cancelled part-way
    /// (that would break the whole connection). Returns the content IDs this peer was being served and lost, once each.
    /// </summary>
    internal IReadOnlyList<string> Reauthorize()
    {
        var lost = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (requestId, contentId) in _waiting)
        {
            if (_host.CanSee(PeerId, contentId) || !_serving.TryGetValue(requestId, out var cts))
            {
                continue;
            }
            // Marked before it is claimed, so the serve that sees its claim gone always finds the mark.
            _cut[requestId] = 0;
            if (!_waiting.TryRemove(requestId, out _))
            {
                _cut.TryRemove(requestId, out _);
                continue;
            }
            try
            {
                cts.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        }
        // Only content actually served counts as a cut: a request for something never visible (a guess) is no transfer.
        foreach (var contentId in _recentContent.Keys)
        {
            if (!_host.CanSee(PeerId, contentId) && _recentContent.TryRemove(contentId, out _))
            {
                lost.Add(contentId);
            }
        }
        return [.. lost];
    }

    /// <summary>Notes content served to this peer, so losing sight of it mid-transfer is audited (a bounded set).</summary>
    private void Remember(string contentId)
    {
        if (_recentContent.Count >= 64 && !_recentContent.ContainsKey(contentId))
        {
            var oldest = _recentContent.OrderBy(p => p.Value).First().Key;
            _recentContent.TryRemove(oldest, out _);
        }
        _recentContent[contentId] = _options.Time.GetTimestamp();
    }

    // ---- client side ----

    /// <summary>Searches the peer's catalog, on a <see cref="TransferProtocol.Search"/> stream of its own.</summary>
    public async Task<IReadOnlyList<SearchResult>> SearchAsync(string query, int limit, CancellationToken cancellationToken)
    {
        await Ready.ConfigureAwait(false);
        using var timer = new CancellationTokenSource(_options.RequestTimeout, _options.Time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timer.Token, cancellationToken);
        try
        {
            await using var stream = new MessageStream(await _session.OpenStreamAsync(TransferProtocol.Search, linked.Token).ConfigureAwait(false));
            using (var writer = new PooledBufferWriter())
            {
                WireCodec.Encode(new SearchRequest(1, query, limit), writer);
                await stream.SendAsync(writer.WrittenMemory, linked.Token).ConfigureAwait(false);
            }
            using var answer = await stream.ReceiveAsync(linked.Token).ConfigureAwait(false)
                ?? throw new SecureMeshException(SecureMeshErrorKind.Protocol, $"{PeerId} closed the search stream without an answer");
            var message = WireCodec.Decode(answer.Memory.Span);
            return message is SearchResponse { RequestId: 1 } r ? r.Results : throw Unexpected(message);
        }
        catch (OperationCanceledException) when (timer.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"{PeerId} did not answer within {_options.RequestTimeout.TotalSeconds:0.#}s");
        }
    }

    /// <summary>
    /// Serves one <see cref="TransferProtocol.Search"/> stream: one search request, its answer (or an error), the end.
    /// The request is served by the same code as a search on the transfer stream.
    /// </summary>
    internal static async Task ServeSearchStreamAsync(PeerSession session, MessageStream stream, IServingHost host, TransferOptions options, ILogger logger, CancellationToken cancellationToken)
    {
        var server = new ProtocolSession(session, stream, host, options, logger);
        using var timer = new CancellationTokenSource(options.RequestTimeout, options.Time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timer.Token, cancellationToken);
        var ct = linked.Token;
        try
        {
            using var first = await stream.ReceiveAsync(ct).ConfigureAwait(false);
            if (first is null)
            {
                return;
            }
            WireMessage message;
            try
            {
                message = WireCodec.Decode(first.Memory.Span);
            }
            catch (SecureMeshException e)
            {
                await server.TrySendErrorAsync(PeekRequestId(first.Memory.Span), WireErrorCode.BadRequest, e.Message, ct).ConfigureAwait(false);
                return;
            }
            if (message is not SearchRequest)
            {
                await server.TrySendErrorAsync(message.RequestId, WireErrorCode.BadRequest, $"only a search request is served on {TransferProtocol.Search}", ct).ConfigureAwait(false);
                return;
            }
            await server._serveSlots.WaitAsync(ct).ConfigureAwait(false);
            await server.ServeAsync(message, ct).ConfigureAwait(false);
            await stream.CompleteSendingAsync(ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SecureMeshException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            if (e is SecureMeshException { Kind: SecureMeshErrorKind.Protocol })
            {
                TransferLog.ProtocolError(logger, session.PeerId.Text, e.Message);
            }
        }
    }

    /// <summary>The peer's encoded manifest for <paramref name="id"/> (unverified).</summary>
    public async Task<byte[]> GetManifestAsync(ContentId id, CancellationToken cancellationToken)
    {
        var reply = await RequestAsync(rid => new ManifestRequest(rid, id), _options.RequestTimeout, cancellationToken).ConfigureAwait(false);
        using (reply.Owner)
        {
            return reply.Message is ManifestResponse r ? r.Manifest.ToArray() : throw Unexpected(reply.Message);
        }
    }

    /// <summary>Which chunks of <paramref name="id"/> (a file of <paramref name="chunkCount"/> chunks) the peer holds.</summary>
    public async Task<ChunkBitfield> GetHaveAsync(ContentId id, long chunkCount, CancellationToken cancellationToken)
    {
        var reply = await RequestAsync(rid => new HaveRequest(rid, id), _options.RequestTimeout, cancellationToken).ConfigureAwait(false);
        using (reply.Owner)
        {
            if (reply.Message is not HaveResponse r)
            {
                throw Unexpected(reply.Message);
            }
            // Checked before the answer is expanded: a peer claiming 2^30 chunks of a small file costs nothing.
            return r.ChunkCount == chunkCount
                ? r.ToBitfield()
                : throw new SecureMeshException(SecureMeshErrorKind.Protocol, $"the peer's chunk map is for {r.ChunkCount} chunks, not {chunkCount}");
        }
    }

    /// <summary>Chunk <paramref name="index"/> of <paramref name="id"/>; the caller verifies and disposes it.</summary>
    public Task<ChunkReply> GetChunkAsync(ContentId id, long index, CancellationToken cancellationToken) =>
        GetChunkAsync(id, index, null, cancellationToken);

    /// <summary>
    /// Chunk <paramref name="index"/> of <paramref name="id"/>, received into <paramref name="into"/>'s buffer when the
    /// reply fits it (else into a pooled buffer); the caller verifies and disposes the reply, and withdraws
    /// <paramref name="into"/> once this has returned or thrown.
    /// </summary>
    internal async Task<ChunkReply> GetChunkAsync(ContentId id, long index, ChunkDestination? into, CancellationToken cancellationToken)
    {
        var reply = await RequestAsync(rid => new ChunkRequest(rid, id, index), _options.ChunkTimeout, cancellationToken, into).ConfigureAwait(false);
        if (reply.Message is ChunkResponse r)
        {
            return new ChunkReply(r.Index, r.Data, r.Proof, reply.Owner);
        }
        reply.Owner?.Dispose();
        throw Unexpected(reply.Message);
    }

    private SecureMeshException Unexpected(WireMessage message) => message is ErrorMessage e
        ? new PeerRequestException(e.Code, e.Message)
        : new SecureMeshException(SecureMeshErrorKind.Protocol, $"{PeerId} answered with an unexpected {message.Type}");

    private async Task<Reply> RequestAsync(Func<uint, WireMessage> make, TimeSpan timeout, CancellationToken cancellationToken, ChunkDestination? into = null)
    {
        await Ready.ConfigureAwait(false);
        uint id;
        do
        {
            id = (uint)Interlocked.Increment(ref _nextId);
        }
        while (id == 0);
        var waiter = new TaskCompletionSource<Reply>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = waiter;
        if (_closed.IsCancellationRequested && _pending.TryRemove(id, out _))
        {
            throw new SecureMeshException(SecureMeshErrorKind.Network, $"session with {PeerId} closed");
        }
        using var timer = new CancellationTokenSource(timeout, _options.Time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timer.Token, cancellationToken);
        if (into is not null)
        {
            _chunkBuffers[id] = into;
        }
        try
        {
            await SendAsync(make(id), linked.Token).ConfigureAwait(false);
            return await waiter.Task.WaitAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            if (!_pending.TryRemove(id, out _))
            {
                // The reply arrived meanwhile: hand its buffer back.
                _ = waiter.Task.ContinueWith(t => t.Result.Owner?.Dispose(), CancellationToken.None,
                    TaskContinuationOptions.OnlyOnRanToCompletion | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
            if (!_closed.IsCancellationRequested)
            {
                _ = TrySendAsync(new CancelRequest(id));
            }
            if (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            throw new TimeoutException($"{PeerId} did not answer within {timeout.TotalSeconds:0.#}s");
        }
        catch
        {
            _pending.TryRemove(id, out _);
            throw;
        }
        finally
        {
            if (into is not null)
            {
                _chunkBuffers.TryRemove(id, out _);
            }
        }
    }

    private async Task TrySendAsync(WireMessage message)
    {
        try
        {
            await SendAsync(message, _closed.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SecureMeshException or OperationCanceledException or IOException or ObjectDisposedException)
        {
        }
    }

    private async Task TrySendErrorAsync(uint requestId, WireErrorCode code, string message, CancellationToken cancellationToken)
    {
        if (message.Length > 400)
        {
            message = message[..400];
        }
        try
        {
            await SendAsync(new ErrorMessage(requestId, code, message), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SecureMeshException or OperationCanceledException or IOException or ObjectDisposedException)
        {
        }
    }

    private async Task SendAsync(WireMessage message, CancellationToken cancellationToken)
    {
        using var writer = new PooledBufferWriter();
        WireCodec.Encode(message, writer);
        await SendRawAsync(writer.WrittenMemory, cancellationToken).ConfigureAwait(false);
    }

    private async Task SendRawAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        using var timer = new CancellationTokenSource(_options.SendTimeout, _options.Time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timer.Token, cancellationToken);
        await _channel.SendAsync(bytes, linked.Token).ConfigureAwait(false);
    }

    /// <summary>Ends the session (tests, bans).</summary>
    internal void Close(string reason) => _session.RequestClose(reason);
}
