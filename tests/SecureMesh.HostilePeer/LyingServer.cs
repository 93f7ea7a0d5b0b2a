using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using SecureMesh.Core;
using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p;
using SecureMesh.Core.Libp2p.Multistream;
using SecureMesh.Core.Libp2p.Yamux;
using SecureMesh.Core.Wire;
using SecureMesh.Node.Network;
using SecureMesh.Node.Transfer;

namespace SecureMesh.HostilePeer;

/// <summary>A file the hostile peer claims to hold: its real tree and a manifest it signed itself.</summary>
internal sealed record Claim(string Path, string Name, MerkleTree Tree, Manifest Manifest);

/// <summary>
/// Speaks the real protocol well enough to be used as a seeder (hello, search, manifest, have-all) and then answers
/// every chunk request with a lie, rotating through four kinds: a flipped byte under the real proof, random bytes
/// under the real proof, the real bytes under a random proof, and another chunk (with its own valid proof) sent
/// under the wrong index. Each one must fail the downloader's verification.
/// </summary>
internal sealed class LyingServer(NodeIdentity identity, IReadOnlyList<Claim> claims, HostileStats stats)
{
    private static readonly string[] Capabilities = ["search", "manifest", "have", "chunk", "cancel"];

    private static readonly string[] Served = [TransferProtocol.Transfer, TransferProtocol.Search];

    /// <summary>Listens on <paramref name="endPoint"/>; the returned task ends once <paramref name="cancellationToken"/> fires and every session is gone.</summary>
    public Task Start(IPEndPoint endPoint, CancellationToken cancellationToken)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(endPoint);
        socket.Listen(64);
        return AcceptLoopAsync(socket, new Upgrader(identity), cancellationToken);
    }

    private async Task AcceptLoopAsync(Socket listener, Upgrader upgrader, CancellationToken cancellationToken)
    {
        var sessions = new List<Task>();
        using (listener)
        {
            try
            {
                while (true)
                {
                    var client = await listener.AcceptAsync(cancellationToken);
                    sessions.Add(Task.Run(() => ConnectionAsync(client, upgrader, cancellationToken), CancellationToken.None));
                }
            }
            catch (OperationCanceledException)
            {
            }
        }
        await Task.WhenAll(sessions);
    }

    /// <summary>A libp2p connection like any node's (multistream-select, Noise, yamux): every stream of our protocols is served with lies.</summary>
    private async Task ConnectionAsync(Socket client, Upgrader upgrader, CancellationToken cancellationToken)
    {
        UpgradedConnection connection;
        try
        {
            connection = await upgrader.UpgradeInboundAsync(new NetworkStream(client, ownsSocket: true), cancellationToken);
        }
        catch (Exception e) when (e is SecureMeshException or OperationCanceledException)
        {
            return;
        }
        await using (connection)
        {
            await using var muxer = new YamuxSession(connection.Stream, isClient: false);
            var streams = new List<Task>();
            try
            {
                while (true)
                {
                    var stream = await muxer.AcceptStreamAsync(cancellationToken);
                    streams.Add(Task.Run(() => StreamAsync(stream, cancellationToken), CancellationToken.None));
                }
            }
            catch (Exception e) when (e is SecureMeshException or OperationCanceledException or IOException or ObjectDisposedException)
            {
                // The honest node hung up (or banned us); that is its right.
            }
            await Task.WhenAll(streams);
        }
    }

    private async Task StreamAsync(YamuxStream stream, CancellationToken cancellationToken)
    {
        try
        {
            var protocol = await MultistreamSelect.NegotiateAsync(stream, Served, cancellationToken);
            await using var messages = new MessageStream(stream);
            await ServeAsync(messages, protocol == TransferProtocol.Transfer, cancellationToken);
        }
        catch (Exception e) when (e is SecureMeshException or OperationCanceledException or IOException or ObjectDisposedException)
        {
        }
        finally
        {
            await stream.DisposeAsync();
        }
    }

    private async Task ServeAsync(MessageStream connection, bool session, CancellationToken cancellationToken)
    {
        if (session)
        {
            await connection.SendAsync(WireCodec.Encode(new Hello(0, WireLimits.ProtocolVersion, Capabilities, WireLimits.DefaultMaxMessageSize)), cancellationToken);
            Interlocked.Increment(ref stats.Sessions);
        }
        while (true)
        {
            using var bytes = await connection.ReceiveAsync(cancellationToken);
            if (bytes is null)
            {
                return;
            }
            WireMessage request;
            try
            {
                request = WireCodec.Decode(bytes.Memory.ToArray());
            }
            catch (SecureMeshException)
            {
                continue;
            }
            if (Answer(request) is { } reply)
            {
                await connection.SendAsync(WireCodec.Encode(reply), cancellationToken);
                if (!session)
                {
                    // One answer per search stream; then wait for the asker's end, so that closing does not reset the
                    // stream before the answer was read.
                    await connection.CompleteSendingAsync(cancellationToken);
                    while (await connection.ReceiveAsync(cancellationToken) is { } more)
                    {
                        more.Dispose();
                    }
                    return;
                }
            }
        }
    }

    private WireMessage? Answer(WireMessage request)
    {
        switch (request)
        {
            case SearchRequest search:
            {
                var terms = search.Query.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                var hits = claims
                    .Where(c => terms.All(t => c.Name.Contains(t, StringComparison.OrdinalIgnoreCase)))
                    .Take(search.Limit)
                    .Select(c => new SearchResult(c.Tree.ContentId, c.Name, c.Tree.FileSize))
                    .ToList();
                return new SearchResponse(search.RequestId, hits);
            }
            case ManifestRequest m:
                return Find(m.ContentId) is { } claim
                    ? new ManifestResponse(m.RequestId, claim.Manifest.Encode())
                    : new ErrorMessage(m.RequestId, WireErrorCode.NotFound, "content not shared here");
            case HaveRequest h:
                return Find(h.ContentId) is { } held
                    ? HaveResponse.ForAll(h.RequestId, held.Tree.LeafCount)
                    : new ErrorMessage(h.RequestId, WireErrorCode.NotFound, "content not shared here");
            case ChunkRequest c:
                return Find(c.ContentId) is { } content
                    ? Lie(content, c)
                    : new ErrorMessage(c.RequestId, WireErrorCode.NotFound, "content not shared here");
            default:
                // Hello (already exchanged), Cancel, and replies: nothing to say.
                return null;
        }
    }

    private Claim? Find(ContentId id) => claims.FirstOrDefault(c => c.Tree.ContentId == id);

    private ChunkResponse Lie(Claim claim, ChunkRequest request)
    {
        var n = Interlocked.Increment(ref stats.ChunkRequests);
        var tree = claim.Tree;
        var count = tree.LeafCount;
        var index = request.Index >= 0 && request.Index < count ? request.Index : 0;
        var kind = (int)((n - 1) % 4);
        if ((kind == 2 && tree.ProofLength(index) == 0) || (kind == 3 && count == 1))
        {
            kind = 0;
        }
        ChunkResponse reply;
        switch (kind)
        {
            case 0:
            {
                var data = Read(claim, index);
                data[data.Length / 2] ^= 0x5A;
                reply = new ChunkResponse(request.RequestId, index, data, tree.GetProof(index));
                break;
            }
            case 1:
            {
                var data = RandomNumberGenerator.GetBytes(ChunkLayout.ChunkLength(tree.FileSize, tree.ChunkSize, index));
                reply = new ChunkResponse(request.RequestId, index, data, tree.GetProof(index));
                break;
            }
            case 2:
            {
                var proof = RandomNumberGenerator.GetBytes(tree.ProofLength(index) * MerkleTree.HashLength);
                reply = new ChunkResponse(request.RequestId, index, Read(claim, index), new MerkleProof(proof));
                break;
            }
            default:
            {
                var other = (index + 1) % count;
                reply = new ChunkResponse(request.RequestId, other, Read(claim, other), tree.GetProof(other));
                break;
            }
        }
        Interlocked.Increment(ref stats.Lies);
        return reply;
    }

    private static byte[] Read(Claim claim, long index)
    {
        var tree = claim.Tree;
        var data = new byte[ChunkLayout.ChunkLength(tree.FileSize, tree.ChunkSize, index)];
        using var handle = File.OpenHandle(claim.Path);
        var done = 0;
        while (done < data.Length)
        {
            var read = RandomAccess.Read(handle, data.AsSpan(done), ChunkLayout.ChunkOffset(tree.ChunkSize, index) + done);
            if (read == 0)
            {
                throw new IOException($"{claim.Path} is shorter than indexed");
            }
            done += read;
        }
        return data;
    }
}
