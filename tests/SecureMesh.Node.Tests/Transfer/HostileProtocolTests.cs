using SecureMesh.Core;
using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Wire;
using SecureMesh.Node.Network;
using SecureMesh.Node.Transfer;

namespace SecureMesh.Node.Tests.Transfer;

/// <summary>A trusted peer that speaks raw protocol bytes to a node.</summary>
internal sealed class RawPeer : IAsyncDisposable
{
    private RawPeer(NodeIdentity identity, PeerLink connection)
    {
        Identity = identity;
        Connection = connection;
    }

    public NodeIdentity Identity { get; }

    public PeerLink Connection { get; }

    public static async Task<RawPeer> ConnectAsync(TransferNode target)
    {
        var identity = NodeIdentity.Generate();
        target.Db.Trust.AddPeer(identity.PeerId, null, null, trusted: true);
        var connection = await PeerLink.DialAsync(identity, target.Node.LocalEndPoint, target.PeerId, TimeSpan.FromSeconds(3), CancellationToken.None);
        var peer = new RawPeer(identity, connection);
        await peer.SendAsync(new Hello(0, WireLimits.ProtocolVersion, ["chunk"], WireLimits.DefaultMaxMessageSize));
        Assert.IsType<Hello>(await peer.ReceiveAsync());
        return peer;
    }

    public Task SendAsync(WireMessage message) => SendAsync(WireCodec.Encode(message));

    public async Task SendAsync(byte[] raw) => await Connection.SendAsync(raw, CancellationToken.None);

    /// <summary>The next message, or null when the node closed the connection.</summary>
    public async Task<WireMessage?> ReceiveAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            return WireCodec.Decode(await Connection.ReceiveAsync(cts.Token));
        }
        catch (SecureMeshException) when (!cts.IsCancellationRequested)
        {
            return null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Connection.DisposeAsync();
        Identity.Dispose();
    }
}

public sealed class HostileProtocolTests
{
    [Fact]
    public async Task An_unknown_message_type_gets_an_error_reply_and_the_session_carries_on()
    {
        await using var node = TransferNode.Start();
        await using var peer = await RawPeer.ConnectAsync(node);
        await peer.SendAsync([0x7F, 0x05, 0x01, 0x02]);
        var error = Assert.IsType<ErrorMessage>(await peer.ReceiveAsync());
        Assert.Equal(5u, error.RequestId);
        Assert.Equal(WireErrorCode.BadRequest, error.Code);
        await peer.SendAsync(new SearchRequest(6, "anything", 10));
        Assert.Equal(6u, Assert.IsType<SearchResponse>(await peer.ReceiveAsync()).RequestId);
    }

    [Fact]
    public async Task Out_of_range_and_unknown_chunk_requests_get_error_replies()
    {
        await using var node = TransferNode.Start();
        var id = await node.ShareAsync(node.WriteFile("a.bin", 3 * TransferNode.ChunkSize));
        await using var peer = await RawPeer.ConnectAsync(node);

        await peer.SendAsync(new ChunkRequest(1, id, 3));
        var error = Assert.IsType<ErrorMessage>(await peer.ReceiveAsync());
        Assert.Equal((1u, WireErrorCode.BadRequest), (error.RequestId, error.Code));

        await peer.SendAsync(new ChunkRequest(2, id, long.MaxValue));
        Assert.Equal(WireErrorCode.BadRequest, Assert.IsType<ErrorMessage>(await peer.ReceiveAsync()).Code);

        await peer.SendAsync(new ChunkRequest(3, ContentId.FromHash(new byte[32]), 0));
        Assert.Equal(WireErrorCode.NotFound, Assert.IsType<ErrorMessage>(await peer.ReceiveAsync()).Code);

        // Blocked content is refused even though it is shared.
        node.Db.Trust.BlockContent(id.Text, "test");
        await peer.SendAsync(new ChunkRequest(4, id, 0));
        Assert.Equal(WireErrorCode.Blocked, Assert.IsType<ErrorMessage>(await peer.ReceiveAsync()).Code);

        await peer.SendAsync(new ChunkRequest(5, ContentId.FromHash(new byte[32]), 0));
        Assert.IsType<ErrorMessage>(await peer.ReceiveAsync());
    }

    [Theory]
    [InlineData(new byte[] { 0x02, 0x09, 0x80, 0x80, 0x80, 0x80, 0x10 })]          // search query claiming 4 GiB
    [InlineData(new byte[] { 0x02, 0x09, 0x01, 0x41, 0xC8, 0x27 })]                // search limit 5000, over the cap
    [InlineData(new byte[] { 0x09, 0x09, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F })]    // chunk data claiming 4 GiB
    [InlineData(new byte[] { 0x08, 0x09, 0x01 })]                                  // chunk request cut short
    public async Task Oversized_or_malformed_messages_get_an_error_and_a_closed_connection_and_the_node_lives_on(byte[] hostile)
    {
        await using var node = TransferNode.Start();
        await using (var peer = await RawPeer.ConnectAsync(node))
        {
            await peer.SendAsync(hostile);
            var error = Assert.IsType<ErrorMessage>(await peer.ReceiveAsync());
            Assert.Equal(WireErrorCode.BadRequest, error.Code);
            Assert.Null(await peer.ReceiveAsync());
        }
        await using var next = await RawPeer.ConnectAsync(node);
        await next.SendAsync(new SearchRequest(1, "x", 1));
        Assert.IsType<SearchResponse>(await next.ReceiveAsync());
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(WireLimits.ProtocolVersion + 1)]
    public async Task A_peer_announcing_another_protocol_version_is_closed_before_any_request_is_served(uint version)
    {
        // A downgrade (or an unknown upgrade) is not negotiated: exactly our version, or the session ends at the hello.
        await using var node = TransferNode.Start();
        var id = await node.ShareAsync(node.WriteFile("v.bin", 2 * TransferNode.ChunkSize));
        using var identity = NodeIdentity.Generate();
        node.Db.Trust.AddPeer(identity.PeerId, null, null, trusted: true);
        await using var connection = await PeerLink.DialAsync(identity, node.Node.LocalEndPoint, node.PeerId, TimeSpan.FromSeconds(3), CancellationToken.None);
        // Everything at once (one write of four framed messages), as a peer that ignores the answer to its hello would send it.
        var burst = new List<byte>();
        foreach (var m in new WireMessage[] { new Hello(0, version, ["search", "manifest", "have", "chunk"], WireLimits.DefaultMaxMessageSize), new SearchRequest(1, "v", 10), new ManifestRequest(2, id), new ChunkRequest(3, id, 0) })
        {
            var bytes = WireCodec.Encode(m);
            var length = new byte[Varint.MaxLength64];
            burst.AddRange(length.AsSpan(0, Varint.Write(length, (ulong)bytes.Length)).ToArray());
            burst.AddRange(bytes);
        }
        await connection.SendRawAsync(burst.ToArray(), CancellationToken.None);

        var received = new List<WireMessage>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            while (true)
            {
                received.Add(WireCodec.Decode(await connection.ReceiveAsync(cts.Token)));
            }
        }
        catch (SecureMeshException) when (!cts.IsCancellationRequested)
        {
            // closed by the node
        }
        Assert.False(cts.IsCancellationRequested, "the node kept the session open");
        Assert.IsType<Hello>(received[0]);
        Assert.Equal(WireErrorCode.UnsupportedVersion, Assert.IsType<ErrorMessage>(received[1]).Code);
        Assert.Equal(2, received.Count);
        Assert.DoesNotContain(node.Transfer.OpenSessions(), s => s.PeerId == identity.PeerId);
    }

    [Fact]
    public async Task A_manifest_whose_signature_does_not_verify_is_rejected_and_recorded()
    {
        var detail = await OnlyManifestPeerIsRejectedAsync((_, real) =>
        {
            var manifest = real.ToArray();
            manifest[^1] ^= 1;
            return manifest;
        });
        Assert.Contains("signature does not verify", detail, StringComparison.Ordinal);
    }

    /// <summary>
    /// A trusted peer that answers only manifest requests, with what <paramref name="manifestFor"/> makes of a real
    /// content ID and its real manifest: the download fails for want of a valid manifest, nothing lands in quarantine,
    /// and the peer's manifest is rejected in the audit log (its detail is returned).
    /// </summary>
    private static async Task<string> OnlyManifestPeerIsRejectedAsync(Func<ContentId, byte[], byte[]> manifestFor)
    {
        await using var downloader = TransferNode.Start();
        var real = TransferNode.Start();
        var id = await real.ShareAsync(real.WriteFile("x.bin", 40_000));
        var manifest = manifestFor(id, real.Db.Catalog.FindByContentId(id.Text)[0].Manifest.ToArray());
        await real.DisposeAsync();
        await using var hostile = await ScriptedSeeder.StartAsync(downloader, request => request switch
        {
            ManifestRequest m => new ManifestResponse(m.RequestId, manifest),
            _ => new ErrorMessage(request.RequestId, WireErrorCode.NotFound, "no"),
        });

        var result = await downloader.Transfer.StartDownload(id).Completion.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(DownloadState.Failed, result.State);
        Assert.Contains("no peer gave a valid manifest", result.Reason, StringComparison.Ordinal);
        Assert.Empty(downloader.Db.Quarantine.List());
        return Assert.Single(downloader.Db.Audit.List(), e => e.Event == "manifest.rejected" && e.PeerId == hostile.PeerId.Text).Detail;
    }

    [Fact]
    public async Task A_manifest_lying_about_the_size_is_refuted_by_a_proven_chunk_and_honest_peers_are_not_blamed()
    {
        await using var downloader = TransferNode.Start(TransferNode.Fast(o => o.BanAfter = 1));
        await using var honest = TransferNode.Start();
        var path = honest.WriteFile("real.bin", (5 * TransferNode.ChunkSize) + 123);
        var id = await honest.ShareAsync(path);
        var size = new FileInfo(path).Length;
        // A trusted peer signs a manifest naming the real content ID with another size (the ID binds the size, but
        // that only shows once a chunk is checked). Taken as the truth, every honest chunk would "fail".
        using var publisher = NodeIdentity.Generate();
        var lie = Manifest.Create(publisher, "real.bin", size + TransferNode.ChunkSize, TransferNode.ChunkSize, id, DateTimeOffset.UtcNow).Encode();
        await using var liar = await ScriptedSeeder.StartAsync(downloader, request => request switch
        {
            ManifestRequest m => new ManifestResponse(m.RequestId, lie),
            HaveRequest h => HaveResponse.ForAll(h.RequestId, 7),
            _ => new ErrorMessage(request.RequestId, WireErrorCode.NotFound, "no"),
        });
        await downloader.ConnectAsync(honest);

        var result = await downloader.Transfer.StartDownload(id).Completion.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(result.State == DownloadState.Released, result.Reason);
        Assert.Equal(File.ReadAllBytes(path), File.ReadAllBytes(result.Path!));
        var log = downloader.Db.Audit.List();
        Assert.Contains(log, e => e.Event == "manifest.rejected" && e.PeerId == liar.PeerId.Text
            && e.Detail.Contains($"chunk 0 proves {size} bytes", StringComparison.Ordinal));
        Assert.DoesNotContain(log, e => e.PeerId == honest.PeerId.Text && e.Event is "chunk.rejected" or "peer.banned" or "manifest.rejected");
        Assert.Equal(Storage.PeerState.Trusted, downloader.Db.Trust.GetPeer(honest.PeerId)!.State);
    }

    [Fact]
    public async Task A_manifest_claiming_more_chunks_than_can_be_verified_is_rejected_before_anything_is_allocated()
    {
        using var publisher = NodeIdentity.Generate();
        // 2^62 bytes in 16 KiB chunks: 2^48 chunks (a bitmap of them alone would be 32 TiB).
        var detail = await OnlyManifestPeerIsRejectedAsync((id, _) =>
            Manifest.Create(publisher, "x.bin", 1L << 62, TransferNode.ChunkSize, id, DateTimeOffset.UtcNow).Encode());
        Assert.Contains("chunks, more than", detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_chunk_whose_proof_does_not_match_is_rejected_with_evidence_and_the_sender_banned()
    {
        await using var downloader = TransferNode.Start(TransferNode.Fast(o => o.BanAfter = 1));
        var data = new byte[3 * TransferNode.ChunkSize];
        new Random(5).NextBytes(data);
        var tree = MerkleTree.Build(Leaves(data), data.Length, TransferNode.ChunkSize);
        using var publisher = NodeIdentity.Generate();
        var manifest = Manifest.Create(publisher, tree, "x.bin", DateTimeOffset.UtcNow).Encode();
        await using var hostile = await ScriptedSeeder.StartAsync(downloader, request => request switch
        {
            ManifestRequest m => new ManifestResponse(m.RequestId, manifest),
            HaveRequest h => HaveResponse.ForAll(h.RequestId, 3),
            // Right bytes, wrong proof.
            ChunkRequest c => new ChunkResponse(c.RequestId, c.Index,
                data.AsMemory((int)c.Index * TransferNode.ChunkSize, TransferNode.ChunkSize), new MerkleProof(new byte[tree.ProofLength(c.Index) * 32])),
            _ => null,
        });

        var result = await downloader.Transfer.StartDownload(tree.ContentId).Completion.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(DownloadState.Failed, result.State);
        var log = downloader.Db.Audit.List();
        var rejections = log.Where(e => e.Event == "chunk.rejected").ToList();
        Assert.NotEmpty(rejections);
        Assert.All(rejections, e => Assert.Equal(hostile.PeerId.Text, e.PeerId));
        var rejected = rejections[0];
        Assert.Matches("chunk=[0-2] expected root [0-9a-f]{64}, got root [0-9a-f]{64} from leaf [0-9a-f]{64}", rejected.Detail);
        Assert.Contains(log, e => e.Event == "peer.banned" && e.PeerId == hostile.PeerId.Text);
        Assert.Equal(Storage.PeerState.Blocked, downloader.Db.Trust.GetPeer(hostile.PeerId)!.State);
        // Nothing unverified was recorded, and a download with nothing verified leaves no part file behind (issue 14).
        Assert.False(File.Exists(downloader.Transfer.Quarantine.PartPath(result.QuarantineId!.Value)));
        Assert.Empty(downloader.Db.Downloads.VerifiedChunks(tree.ContentId.Text));
    }

    private static byte[] Leaves(byte[] data)
    {
        var leaves = new byte[(data.Length / TransferNode.ChunkSize) * 32];
        for (var i = 0; i < data.Length / TransferNode.ChunkSize; i++)
        {
            Blake3.Hasher.Hash(data.AsSpan(i * TransferNode.ChunkSize, TransferNode.ChunkSize), leaves.AsSpan(i * 32, 32));
        }
        return leaves;
    }
}

/// <summary>A trusted "seeder" whose answers are scripted, to play a hostile peer.</summary>
internal sealed class ScriptedSeeder : IAsyncDisposable
{
    private readonly TestNode _node;

    private ScriptedSeeder(TestNode node) => _node = node;

    public PeerId PeerId => _node.Identity.PeerId;

    /// <summary>Where the seeder listens (to reconnect to it after the downloader restarts).</summary>
    public System.Net.IPEndPoint EndPoint => _node.EndPoint;

    /// <summary>The seeder's identity, to sign manifests it publishes.</summary>
    public NodeIdentity Identity => _node.Identity;

    public static async Task<ScriptedSeeder> StartAsync(TransferNode downloader, Func<WireMessage, WireMessage?> answer)
    {
        var node = TestNode.Start(handler: async (session, ct) =>
        {
            var connection = session.Messages!;
            await connection.SendAsync(WireCodec.Encode(new Hello(0, WireLimits.ProtocolVersion, [], WireLimits.DefaultMaxMessageSize)), ct);
            while (true)
            {
                using var received = await connection.ReceiveAsync(ct) ?? throw new SecureMeshException(SecureMeshErrorKind.Network, "closed");
                var message = WireCodec.Decode(received.Memory.ToArray());
                if (message is Hello)
                {
                    continue;
                }
                if (answer(message) is { } reply)
                {
                    await connection.SendAsync(WireCodec.Encode(reply), ct);
                }
            }
        });
        var seeder = new ScriptedSeeder(node);
        node.Db.Trust.AddPeer(downloader.PeerId, null, null, trusted: true);
        downloader.Db.Trust.AddPeer(node.Identity.PeerId, null, null, trusted: true);
        await downloader.Node.ConnectAsync(node.Identity.PeerId, node.EndPoint, CancellationToken.None);
        await Wait.UntilAsync(() => downloader.Transfer.OpenSessions().Count == 1, TimeSpan.FromSeconds(5), "the hostile session");
        return seeder;
    }

    public ValueTask DisposeAsync() => _node.DisposeAsync();
}
