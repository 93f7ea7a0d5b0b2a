using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p.Identify;
using SecureMesh.Core.Libp2p.Multistream;
using SecureMesh.Core.Libp2p.Yamux;
using Microsoft.Extensions.Time.Testing;

namespace SecureMesh.Core.Tests.Libp2p;

public sealed class IdentifyTests : IDisposable
{
    private readonly NodeIdentity _server = NodeIdentity.Generate();
    private readonly IdentifyService _service = new();

    private static CancellationToken Patience => new CancellationTokenSource(TimeSpan.FromSeconds(20)).Token;

    // /ip4/127.0.0.1/tcp/4747 and /ip4/10.0.0.1/tcp/1234 as binary multiaddrs (codes 0x04 ip4, 0x06 tcp).
    private static readonly byte[] AddrA = [0x04, 127, 0, 0, 1, 0x06, 0x12, 0x8B];
    private static readonly byte[] AddrB = [0x04, 10, 0, 0, 1, 0x06, 0x04, 0xD2];

    public void Dispose() => _server.Dispose();

    [Fact]
    public async Task An_answer_round_trips_every_field_and_the_stream_end_closes_it()
    {
        var info = IdentifyService.Describe(_server, [AddrA, AddrB], [IdentifyService.ProtocolId, "/ipfs/ping/1.0.0"], AddrB);
        await using var pair = await StreamPair.OpenAsync();
        await _service.RespondAsync(pair.B, info, Patience);
        pair.SocketB.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        var got = await _service.RequestAsync(pair.A, _server.PeerId, Patience);

        Assert.Equal("ipfs/0.1.0", got.ProtocolVersion);
        Assert.StartsWith("securemesh/", got.AgentVersion, StringComparison.Ordinal);
        Assert.Matches(@"^securemesh/\d+\.\d+\.\d+", got.AgentVersion);
        Assert.Equal(PeerId.EncodeProtobufPublicKey(_server.PublicKey), got.PublicKey);
        Assert.Equal([AddrA, AddrB], got.ListenAddrs);
        Assert.Equal(AddrB, got.ObservedAddr);
        Assert.Equal([IdentifyService.ProtocolId, "/ipfs/ping/1.0.0"], got.Protocols);
    }

    [Fact]
    public void A_message_encoded_by_hand_from_the_spec_decodes_field_by_field()
    {
        // protocolVersion (5) "ipfs/0.1.0", agentVersion (6) "x", listenAddrs (2) AddrA, protocols (3) "/p", an unknown
        // varint field 7 (skipped) and signedPeerRecord (8) 01 02.
        byte[] wire =
        [
            0x2A, 10, .. "ipfs/0.1.0"u8, 0x32, 1, (byte)'x', 0x12, 8, .. AddrA, 0x1A, 2, .. "/p"u8, 0x38, 0x96, 0x01, 0x42, 2, 1, 2,
        ];
        var message = IdentifyMessage.Decode(wire);
        Assert.Equal("ipfs/0.1.0", message.ProtocolVersion);
        Assert.Equal("x", message.AgentVersion);
        Assert.Equal([AddrA], message.ListenAddrs);
        Assert.Equal(["/p"], message.Protocols);
        Assert.Equal(new byte[] { 1, 2 }, message.SignedPeerRecord);
        Assert.Null(message.PublicKey);
        Assert.Null(message.ObservedAddr);
        // Our encoding of what was understood reads back the same (the unknown field is not kept).
        var again = IdentifyMessage.Decode(message.Encode());
        Assert.Equal(message.ProtocolVersion, again.ProtocolVersion);
        Assert.Equal(message.ListenAddrs, again.ListenAddrs);
        Assert.Equal(message.SignedPeerRecord, again.SignedPeerRecord);
    }

    [Fact]
    public async Task A_peer_that_sends_another_peers_key_is_refused()
    {
        using var victim = NodeIdentity.Generate();
        var lie = IdentifyService.Describe(victim, [AddrA], [], null);
        await using var pair = await StreamPair.OpenAsync();
        await _service.RespondAsync(pair.B, lie, Patience);
        pair.SocketB.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => _service.RequestAsync(pair.A, _server.PeerId, Patience));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.Contains("not its own", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_second_message_cannot_swap_the_key_after_the_first()
    {
        using var victim = NodeIdentity.Generate();
        await using var pair = await StreamPair.OpenAsync();
        await _service.RespondAsync(pair.B, IdentifyService.Describe(_server, [AddrA], ["/a"], null), Patience);
        await _service.RespondAsync(pair.B, new IdentifyMessage { PublicKey = PeerId.EncodeProtobufPublicKey(victim.PublicKey) }, Patience);
        pair.SocketB.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => _service.RequestAsync(pair.A, _server.PeerId, Patience));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
    }

    [Fact]
    public async Task Several_messages_merge_and_a_push_may_omit_the_key_but_an_answer_may_not()
    {
        await using var pair = await StreamPair.OpenAsync();
        await _service.PushAsync(pair.B, new IdentifyMessage { AgentVersion = "old", ListenAddrs = [AddrA], Protocols = ["/a", "/b"] }, Patience);
        await _service.PushAsync(pair.B, new IdentifyMessage { AgentVersion = "new", ListenAddrs = [AddrB], Protocols = ["/b", "/c"] }, Patience);
        pair.SocketB.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        var pushed = await _service.ReceivePushAsync(pair.A, _server.PeerId, Patience);
        Assert.Equal("new", pushed.AgentVersion);
        Assert.Equal([AddrA, AddrB], pushed.ListenAddrs);
        Assert.Equal(["/a", "/b", "/c"], pushed.Protocols);

        await using var pair2 = await StreamPair.OpenAsync();
        await _service.RespondAsync(pair2.B, new IdentifyMessage { AgentVersion = "keyless" }, Patience);
        pair2.SocketB.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => _service.RequestAsync(pair2.A, _server.PeerId, Patience));
        Assert.Contains("no public key", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_oversized_length_is_refused_before_the_body_arrives()
    {
        await using var pair = await StreamPair.OpenAsync();
        await pair.B.WriteAsync(Bytes.Varint(IdentifyMessage.MaxSize + 1), Patience);
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => _service.RequestAsync(pair.A, _server.PeerId, Patience));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
    }

    [Fact]
    public void Too_many_addresses_or_protocols_are_refused_and_our_own_oversize_message_is_not_sent()
    {
        var addrs = new List<byte>();
        for (var i = 0; i <= IdentifyMessage.MaxListenAddrs; i++)
        {
            addrs.AddRange([0x12, 2, 0x04, 0x00]);
        }
        Assert.Equal(SecureMeshErrorKind.Protocol, Assert.Throws<SecureMeshException>(() => IdentifyMessage.Decode(addrs.ToArray())).Kind);

        var protocols = new List<byte>();
        for (var i = 0; i <= IdentifyMessage.MaxProtocols; i++)
        {
            var p = System.Text.Encoding.ASCII.GetBytes($"/{i}");
            protocols.AddRange([0x1A, (byte)p.Length, .. p]);
        }
        Assert.Equal(SecureMeshErrorKind.Protocol, Assert.Throws<SecureMeshException>(() => IdentifyMessage.Decode(protocols.ToArray())).Kind);

        // Duplicated protocols count once: 600 copies of one name are one protocol.
        var repeated = Enumerable.Range(0, 600).SelectMany(_ => (byte[])[0x1A, 2, .. "/p"u8]).ToArray();
        Assert.Single(IdentifyMessage.Decode(repeated).Protocols);

        var huge = new IdentifyMessage { Protocols = [.. Enumerable.Range(0, 1000).Select(i => $"/protocol/{i}")] };
        Assert.Equal(SecureMeshErrorKind.InvalidInput, Assert.Throws<SecureMeshException>(() => huge.Encode()).Kind);
    }

    [Theory]
    [InlineData("0a05", "bytes field runs past the end")]
    [InlineData("2a02c328", "invalid UTF-8 in protocolVersion")]
    [InlineData("0b", "group wire type")]
    [InlineData("ffffffffffffffffffff01", "varint too long")]
    [InlineData("00", "field number zero")]
    public void Malformed_messages_are_protocol_errors(string hex, string because)
    {
        _ = because;
        var e = Assert.Throws<SecureMeshException>(() => IdentifyMessage.Decode(Convert.FromHexString(hex)));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.Contains("identify message", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_empty_stream_or_a_cut_message_is_an_error_and_silence_times_out()
    {
        await using var pair = await StreamPair.OpenAsync();
        pair.SocketB.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        await Assert.ThrowsAsync<SecureMeshException>(() => _service.RequestAsync(pair.A, _server.PeerId, Patience));

        await using var pair2 = await StreamPair.OpenAsync();
        await pair2.B.WriteAsync(new byte[] { 20, 0x0A, 5, 1, 2 }, Patience);
        pair2.SocketB.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        var cut = await Assert.ThrowsAsync<SecureMeshException>(() => _service.RequestAsync(pair2.A, _server.PeerId, Patience));
        Assert.Equal(SecureMeshErrorKind.Protocol, cut.Kind);

        var time = new FakeTimeProvider();
        var slow = new IdentifyService(TimeSpan.FromSeconds(5), time);
        await using var pair3 = await StreamPair.OpenAsync();
        var request = slow.RequestAsync(pair3.A, _server.PeerId, Patience);
        await Task.Delay(50);
        Assert.False(request.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(6));
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => request.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(SecureMeshErrorKind.Network, e.Kind);
    }

    [Fact]
    public void The_varint_writer_of_the_codec_matches_the_spec_example()
    {
        // A 300-byte protocol name has a two-byte length (0xAC 0x02), as in the multiformats varint spec.
        var name = "/" + new string('p', 299);
        var encoded = new IdentifyMessage { Protocols = [name] }.Encode();
        Assert.Equal(new byte[] { 0x1A, 0xAC, 0x02 }, encoded[..3]);
        Assert.Equal(3 + 300, encoded.Length);
        Assert.Equal(2, Core.Wire.Varint.Size(300));
    }

    [Fact]
    public async Task Identify_over_a_session_returns_the_answer_and_null_when_the_peer_leaves_before_taking_the_stream()
    {
        // Answered: the peer takes the stream, negotiates and answers.
        var (client, server) = await YamuxKit.SessionPairAsync(YamuxKit.Quiet(), YamuxKit.Quiet());
        await using (client)
        await using (server)
        {
            var asking = _service.RequestOverAsync(client, _server.PeerId, null, Patience);
            var inbound = await server.AcceptStreamAsync(Patience);
            Assert.Equal(IdentifyService.ProtocolId, await MultistreamSelect.NegotiateAsync(inbound, [IdentifyService.ProtocolId], Patience));
            await new IdentifyService(closeGrace: TimeSpan.Zero).RespondAsync(inbound, IdentifyService.Describe(_server, [AddrA], [IdentifyService.ProtocolId], null), Patience);
            await inbound.CloseWriteAsync();
            var info = await asking;
            Assert.NotNull(info);
            Assert.Equal([AddrA], info.ListenAddrs);
        }

        // The peer closes the connection without taking the stream: null, not an exception.
        (client, server) = await YamuxKit.SessionPairAsync(YamuxKit.Quiet(), YamuxKit.Quiet());
        await using (client)
        {
            var asking = _service.RequestOverAsync(client, _server.PeerId, null, Patience);
            await YamuxKit.EventuallyAsync(() => server.StreamCount == 1, "the identify stream to arrive");
            await server.CloseAsync();
            Assert.Null(await asking);
            // And a session that has ended is not asked at all.
            Assert.Null(await _service.RequestOverAsync(client, _server.PeerId, null, Patience));
        }

        // A peer that takes the stream and answers with someone else's key is still refused.
        (client, server) = await YamuxKit.SessionPairAsync(YamuxKit.Quiet(), YamuxKit.Quiet());
        await using (client)
        await using (server)
        {
            using var other = NodeIdentity.Generate();
            var asking = _service.RequestOverAsync(client, _server.PeerId, null, Patience);
            var inbound = await server.AcceptStreamAsync(Patience);
            await MultistreamSelect.NegotiateAsync(inbound, [IdentifyService.ProtocolId], Patience);
            await new IdentifyService(closeGrace: TimeSpan.Zero).RespondAsync(inbound, IdentifyService.Describe(other, [], [], null), Patience);
            await inbound.CloseWriteAsync();
            Assert.Equal(SecureMeshErrorKind.Protocol, (await Assert.ThrowsAsync<SecureMeshException>(() => asking)).Kind);
        }
    }
}
