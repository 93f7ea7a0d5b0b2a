using System.Net;
using System.Net.Sockets;
using SecureMesh.Core;
using SecureMesh.Core.Channel;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p;
using SecureMesh.Node.Network;
using static SecureMesh.Node.Tests.Connections.TransportKit;

namespace SecureMesh.Node.Tests.Connections;

/// <summary>
/// What a connection through the production stack carries: both peers authenticated, the secured byte stream
/// (NoiseStream), and whole messages on yamux streams (MessageStream), with their caps, order, cancellation and close.
/// (Ported from the pre-libp2p channel's SecureChannelTests.)
/// </summary>
public sealed class SecuredConnectionTests : TransportTestBase
{
    [Fact]
    public async Task Dial_and_listen_authenticate_both_peers_and_agree_on_everything()
    {
        await using var dialled = await DialAsync(_client, Transport.LocalEndPoint, _server.PeerId);
        var inbound = await Transport.Connections.ReadAsync(Timeout());
        await using var accepted = inbound.Connection;

        Assert.Equal(_server.PeerId, dialled.RemotePeerId);
        Assert.Equal(_client.PeerId, accepted.RemotePeerId);
        Assert.Equal(dialled.HandshakeHash, accepted.HandshakeHash);
        Assert.Equal(32, dialled.HandshakeHash.Length);
        Assert.Equal(ShortAuthString.From(dialled.HandshakeHash), ShortAuthString.From(accepted.HandshakeHash));
        Assert.Equal([Upgrader.YamuxProtocolId], dialled.Stream.RemoteStreamMuxers);
        Assert.Equal([Upgrader.YamuxProtocolId], accepted.Stream.RemoteStreamMuxers);
        Assert.Equal(Upgrader.YamuxProtocolId, dialled.Muxer);
        Assert.Equal(Upgrader.YamuxProtocolId, accepted.Muxer);
        Assert.True(dialled.IsInitiator);
        Assert.False(accepted.IsInitiator);
        Assert.NotNull(inbound.Remote);
        Assert.Equal(IPAddress.Loopback, inbound.Remote.Address);

        await dialled.Stream.WriteAsync("hello"u8.ToArray(), Timeout());
        Assert.Equal("hello"u8.ToArray(), await ReadExactlyAsync(accepted.Stream, 5));
        Assert.True(dialled.Stream.BytesSent > 5 && accepted.Stream.BytesReceived == dialled.Stream.BytesSent);
    }

    [Fact]
    public async Task The_upgrade_runs_over_plain_streams_in_both_roles_and_the_responder_may_speak_first()
    {
        var (dialling, acceptedEnd) = await ConnectedPairAsync();
        var inbound = new Upgrader(_server).UpgradeInboundAsync(acceptedEnd, Timeout());
        await using var initiator = await new Upgrader(_client).UpgradeOutboundAsync(dialling, _server.PeerId, Timeout());
        await using var responder = await inbound;
        Assert.Equal(_server.PeerId, initiator.RemotePeerId);
        Assert.Equal(_client.PeerId, responder.RemotePeerId);
        await responder.Stream.WriteAsync(new byte[] { 1, 2, 3 }, Timeout());
        Assert.Equal(new byte[] { 1, 2, 3 }, await ReadExactlyAsync(initiator.Stream, 3));
    }

    [Fact]
    public async Task A_five_MiB_message_round_trips()
    {
        await using var pair = await MuxedPair.OpenAsync(_client, Transport, _server);
        var (client, server) = await pair.OpenMessageStreamsAsync();
        var big = new byte[5 * 1024 * 1024];
        Random.Shared.NextBytes(big);
        var send = client.SendAsync(big, Timeout()).AsTask();
        using (var received = await server.ReceiveAsync(Timeout()))
        {
            await send;
            Assert.True(received!.Memory.Span.SequenceEqual(big));
            var echo = server.SendAsync(received.Memory, Timeout()).AsTask();
            using var back = await client.ReceiveAsync(Timeout());
            await echo;
            Assert.True(back!.Memory.Span.SequenceEqual(big));
        }
    }

    [Fact]
    public async Task Many_messages_of_many_sizes_arrive_in_order()
    {
        await using var pair = await MuxedPair.OpenAsync(_client, Transport, _server);
        var (client, server) = await pair.OpenMessageStreamsAsync();
        // Sizes around one Noise frame's plaintext (65519 bytes) and small ones.
        var sizes = Enumerable.Range(0, 2000).Select(i => i % 7 == 0 ? 65519 - 4 + (i % 5) : i % 300).ToArray();
        var sender = Task.Run(async () =>
        {
            foreach (var (size, i) in sizes.Select((s, i) => (s, i)))
            {
                var m = new byte[size];
                m.AsSpan().Fill((byte)i);
                await client.SendAsync(m, Timeout());
            }
        });
        for (var i = 0; i < sizes.Length; i++)
        {
            using var m = await server.ReceiveAsync(Timeout());
            Assert.Equal(sizes[i], m!.Memory.Length);
            Assert.True(m.Memory.Span.IndexOfAnyExcept((byte)i) < 0);
        }
        await sender;
    }

    [Fact]
    public async Task Concurrent_senders_never_interleave_messages()
    {
        await using var pair = await MuxedPair.OpenAsync(_client, Transport, _server);
        var (client, server) = await pair.OpenMessageStreamsAsync();
        const int Senders = 8, PerSender = 50;
        var tasks = Enumerable.Range(0, Senders).Select(s => Task.Run(async () =>
        {
            for (var i = 0; i < PerSender; i++)
            {
                var m = new byte[1000 + (s * 10000) + i];
                m.AsSpan().Fill((byte)s);
                await client.SendAsync(m, Timeout());
            }
        })).ToArray();
        var counts = new int[Senders];
        for (var i = 0; i < Senders * PerSender; i++)
        {
            using var m = await server.ReceiveAsync(Timeout());
            var s = m!.Memory.Span[0];
            Assert.True(m.Memory.Span.IndexOfAnyExcept(s) < 0, "a message was mixed with another");
            Assert.Equal(1000 + (s * 10000) + counts[s], m.Memory.Length);
            counts[s]++;
        }
        await Task.WhenAll(tasks);
        Assert.All(counts, c => Assert.Equal(PerSender, c));
    }

    [Fact]
    public async Task Cancelling_a_receive_before_a_message_begins_keeps_the_connection()
    {
        await using var pair = await MuxedPair.OpenAsync(_client, Transport, _server);
        var (client, server) = await pair.OpenMessageStreamsAsync();
        using (var soon = new CancellationTokenSource(TimeSpan.FromMilliseconds(100)))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => server.ReceiveAsync(soon.Token).AsTask());
        }
        Assert.Null(server.ClosedReason);
        await client.SendAsync("still here"u8.ToArray(), Timeout());
        using (var m = await server.ReceiveAsync(Timeout()))
        {
            Assert.Equal("still here"u8.ToArray(), m!.Memory.ToArray());
        }

        // The same one layer down, on the secured stream itself (no muxer on this connection).
        await using var dialled = await DialAsync(_client, Transport.LocalEndPoint, _server.PeerId);
        await using var accepted = await AcceptAsync(Transport);
        using (var soon = new CancellationTokenSource(TimeSpan.FromMilliseconds(100)))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => accepted.Stream.ReadAsync(new byte[16], soon.Token).AsTask());
        }
        Assert.Null(accepted.Stream.ClosedReason);
        await dialled.Stream.WriteAsync("again"u8.ToArray(), Timeout());
        Assert.Equal("again"u8.ToArray(), await ReadExactlyAsync(accepted.Stream, 5));
    }

    [Fact]
    public async Task After_dispose_send_and_receive_throw_instead_of_hanging()
    {
        await using var dialled = await DialAsync(_client, Transport.LocalEndPoint, _server.PeerId);
        var accepted = await AcceptAsync(Transport);
        await accepted.DisposeAsync();
        await Assert.ThrowsAsync<SecureMeshException>(() => accepted.Stream.ReadAsync(new byte[1], Timeout()).AsTask());
        await Assert.ThrowsAsync<SecureMeshException>(() => accepted.Stream.WriteAsync(new byte[1], Timeout()).AsTask());

        await using var pair = await MuxedPair.OpenAsync(_client, Transport, _server);
        var (client, server) = await pair.OpenMessageStreamsAsync();
        await server.DisposeAsync();
        await Assert.ThrowsAsync<SecureMeshException>(() => server.ReceiveAsync(Timeout()).AsTask());
        await Assert.ThrowsAsync<SecureMeshException>(() => server.SendAsync(new byte[1], Timeout()).AsTask());
    }

    [Fact]
    public async Task Reaching_the_nonce_limit_closes_the_connection()
    {
        await using var dialled = await DialAsync(_client, Transport.LocalEndPoint, _server.PeerId);
        await using var accepted = await AcceptAsync(Transport);
        dialled.Stream.TransportForTest.SendCipher.SetNonceForTest(Core.Noise.TransportState.NonceLimit);
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => dialled.Stream.WriteAsync(new byte[1], Timeout()).AsTask());
        Assert.Contains("nonce", e.Message, StringComparison.Ordinal);
        Assert.NotNull(dialled.Stream.ClosedReason);
        Assert.True(await EndsWithinAsync(accepted.Stream), "the peer sees the connection end");
    }

    [Fact]
    public async Task A_message_over_the_cap_is_refused_before_sending()
    {
        await using var pair = await MuxedPair.OpenAsync(_client, Transport, _server);
        var (client, server) = await pair.OpenMessageStreamsAsync(maxMessageSize: 1000);
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => client.SendAsync(new byte[1001], Timeout()).AsTask());
        Assert.Equal(SecureMeshErrorKind.InvalidInput, e.Kind);
        await client.SendAsync(new byte[1000], Timeout());
        using var m = await server.ReceiveAsync(Timeout());
        Assert.Equal(1000, m!.Memory.Length);
    }

    [Fact]
    public async Task A_clean_close_by_the_peer_reads_as_the_end_and_a_close_inside_a_message_is_a_protocol_error()
    {
        // The secured stream: the peer's close between frames is the end of the stream.
        await using var dialled = await DialAsync(_client, Transport.LocalEndPoint, _server.PeerId);
        await using var accepted = await AcceptAsync(Transport);
        await dialled.DisposeAsync();
        Assert.Equal(0, await accepted.Stream.ReadAsync(new byte[16], Timeout()));

        // Messages: a close between messages is the end (null); a close inside one is a protocol error.
        await using var pair = await MuxedPair.OpenAsync(_client, Transport, _server);
        var (client, server) = await pair.OpenMessageStreamsAsync();
        await client.CompleteSendingAsync(Timeout());
        Assert.Null(await server.ReceiveAsync(Timeout()));
        var (client2, server2) = await pair.OpenMessageStreamsAsync();
        await client2.Stream.WriteAsync(new byte[] { 100, 1, 2 }, Timeout()); // 100 bytes announced, 2 sent
        await client2.CompleteSendingAsync(Timeout());
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => server2.ReceiveAsync(Timeout()).AsTask());
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.Contains("inside a message", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dialing_a_closed_port_is_a_network_error()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var endPoint = (IPEndPoint)probe.LocalEndpoint;
        probe.Stop();
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => DialAsync(_client, endPoint, null));
        Assert.Equal(SecureMeshErrorKind.Network, e.Kind);
    }
}
