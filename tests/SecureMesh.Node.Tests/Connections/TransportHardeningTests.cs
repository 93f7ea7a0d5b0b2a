using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Time.Testing;
using SecureMesh.Core;
using SecureMesh.Core.Channel;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Noise;
using SecureMesh.Node.Network;
using static SecureMesh.Node.Tests.Connections.TransportKit;

namespace SecureMesh.Node.Tests.Connections;

/// <summary>
/// Attacks on the production connection stack (TcpTransport, Upgrader, Noise handshake, NoiseStream): each ends in a
/// closed connection, no connection comes out of the transport, and it then still serves an honest client.
/// (Ported from the pre-libp2p channel's HardeningTests, whose attacks they repeat.)
/// </summary>
public sealed class TransportHardeningTests : TransportTestBase
{
    private async Task AssertRejectedAndStillServingAsync(long failuresBefore = 0)
    {
        await WaitUntilAsync(() => Transport.FailedHandshakes > failuresBefore, "the transport to record the failed upgrade");
        Assert.False(Transport.Connections.TryRead(out _), "no connection may come out of a failed upgrade");
        await AssertServesGoodClientAsync(Transport, _server);
    }

    [Theory]
    [InlineData(0)] // -> e
    [InlineData(1)] // <- e, ee, s, es (+ responder payload)
    [InlineData(2)] // -> s, se (+ initiator payload)
    public async Task A_tampered_byte_in_any_handshake_message_closes_the_connection(int message)
    {
        var (fromClient, index) = message switch { 0 => (true, 0), 1 => (false, 0), _ => (true, 1) };
        await using var proxy = new FrameProxy(Transport.LocalEndPoint, (c, i, frame) =>
        {
            if (c == fromClient && i == index)
            {
                frame[frame.Length / 2] ^= 0x40;
            }
            return frame;
        });
        if (message < 2)
        {
            var e = await Assert.ThrowsAsync<SecureMeshException>(() => DialAsync(_client, proxy.EndPoint, _server.PeerId));
            Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        }
        else
        {
            // The initiator is done after writing message 3 (the muxer was chosen inside the handshake); the responder
            // rejects it and closes.
            await using var dialled = await DialAsync(_client, proxy.EndPoint, _server.PeerId);
            Assert.True(await EndsWithinAsync(dialled.Stream), "the responder closes the connection");
        }
        await AssertRejectedAndStillServingAsync();
    }

    [Fact]
    public async Task A_truncated_frame_closes_the_connection_at_once()
    {
        using var raw = await ConnectAtNoiseAsync(Transport.LocalEndPoint);
        await raw.SendAsync(new byte[] { 0x00, 0x64, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 });
        raw.Shutdown(SocketShutdown.Send);
        Assert.True(await WaitForCloseAsync(raw, TimeSpan.FromSeconds(3)), "closed well before the 5 s deadline");
        await AssertRejectedAndStillServingAsync();
    }

    [Fact]
    public async Task A_length_prefix_larger_than_what_follows_is_dropped_at_the_deadline()
    {
        await using var transport = Listen(_server, TimeSpan.FromMilliseconds(800));
        using var raw = await ConnectAtNoiseAsync(transport.LocalEndPoint);
        await raw.SendAsync(new byte[] { 0xFF, 0xFF }.Concat(new byte[100]).ToArray());
        Assert.True(await WaitForCloseAsync(raw, TimeSpan.FromSeconds(5)));
        await WaitUntilAsync(() => transport.FailedHandshakes == 1, "the failure to be counted");
        await AssertServesGoodClientAsync(transport, _server);
    }

    [Fact]
    public async Task A_zero_length_first_message_closes_the_connection_at_once()
    {
        using var raw = await ConnectAtNoiseAsync(Transport.LocalEndPoint);
        await raw.SendAsync(new byte[] { 0x00, 0x00 });
        Assert.True(await WaitForCloseAsync(raw, TimeSpan.FromSeconds(3)));
        await AssertRejectedAndStillServingAsync();
    }

    [Fact]
    public async Task An_oversized_first_frame_is_rejected()
    {
        using var raw = await ConnectAtNoiseAsync(Transport.LocalEndPoint);
        var body = new byte[65535];
        Random.Shared.NextBytes(body);
        await raw.SendAsync(Frame(body));
        Assert.True(await WaitForCloseAsync(raw, TimeSpan.FromSeconds(3)));
        await AssertRejectedAndStillServingAsync();
    }

    [Theory]
    [InlineData(false)] // instead of multistream-select: what a port scanner or a stray client sends
    [InlineData(true)] // after choosing /noise: a 64-byte "first message" followed by noise
    public async Task Garbage_bytes_close_the_connection(bool afterChoosingNoise)
    {
        using var raw = afterChoosingNoise ? await ConnectAtNoiseAsync(Transport.LocalEndPoint) : await ConnectRawAsync(Transport.LocalEndPoint);
        var garbage = new byte[3000];
        Random.Shared.NextBytes(garbage);
        garbage[0] = 0x00;
        garbage[1] = 0x40;
        await raw.SendAsync(garbage);
        Assert.True(await WaitForCloseAsync(raw, TimeSpan.FromSeconds(3)));
        await AssertRejectedAndStillServingAsync();
    }

    [Fact]
    public async Task An_inner_message_length_over_the_cap_closes_the_stream_before_allocating()
    {
        // The old channel's 4-byte message length is gone: whole messages now travel on a yamux stream as a varint length
        // and the bytes (MessageStream), and that length is what a peer can lie about.
        await using var pair = await MuxedPair.OpenAsync(_client, Transport, _server);
        var (dialled, accepted) = await pair.OpenMessageStreamsAsync(maxMessageSize: 1024);
        // 2 GiB announced as a varint, then a few bytes.
        await dialled.Stream.WriteAsync(new byte[] { 0x80, 0x80, 0x80, 0x80, 0x08, 1, 2, 3 }, Timeout());
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => accepted.ReceiveAsync(Timeout()).AsTask());
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.Contains("cap", e.Message, StringComparison.Ordinal);
        Assert.NotNull(accepted.ClosedReason);
        await Assert.ThrowsAsync<SecureMeshException>(() => accepted.ReceiveAsync(Timeout()).AsTask());
        // The stream was reset: the liar's side ends too, and the connection carries other streams on.
        Assert.True(await EndsAsync(dialled), "the liar's end of the stream ends too");
        await pair.AssertNewStreamWorksAsync();
        await AssertServesGoodClientAsync(Transport, _server);
    }

    [Fact]
    public async Task A_third_message_replayed_from_another_session_is_rejected()
    {
        byte[]? recorded = null;
        var session = 0;
        await using var proxy = new FrameProxy(Transport.LocalEndPoint, (c, i, frame) =>
        {
            if (c && i == 0)
            {
                Interlocked.Increment(ref session);
            }
            if (c && i == 1)
            {
                if (recorded is null)
                {
                    recorded = (byte[])frame.Clone();
                }
                else
                {
                    return recorded;
                }
            }
            return frame;
        });
        await using (var first = await DialAsync(_client, proxy.EndPoint, _server.PeerId))
        {
            await using var accepted = await AcceptAsync(Transport);
            Assert.Equal(_client.PeerId, accepted.RemotePeerId);
        }
        await using var second = await DialAsync(_client, proxy.EndPoint, _server.PeerId);
        Assert.True(await EndsWithinAsync(second.Stream), "the replayed third message gets the connection closed");
        Assert.Equal(2, session);
        await AssertRejectedAndStillServingAsync();
    }

    [Fact]
    public async Task A_bad_identity_signature_is_rejected_by_the_responder()
    {
        var key = X25519KeyPair.Generate();
        var payload = NoiseHandshakePayload.Create(_client, key.PublicKey, [Core.Libp2p.Upgrader.YamuxProtocolId]);
        payload.IdentitySignature[10] ^= 1;
        using var local = LocalStaticKey.CreateForTest(key);
        await DialWithAsync(local, payload.Encode());
        await AssertRejectedAndStillServingAsync();
    }

    [Fact]
    public async Task A_signature_by_another_identity_is_rejected_by_the_responder()
    {
        using var other = NodeIdentity.Generate();
        var key = X25519KeyPair.Generate();
        var honest = NoiseHandshakePayload.Create(_client, key.PublicKey, []);
        var forged = new NoiseHandshakePayload
        {
            IdentityKey = honest.IdentityKey,
            IdentitySignature = other.Sign(NoiseHandshakePayload.SignedData(key.PublicKey)),
            StreamMuxers = [Core.Libp2p.Upgrader.YamuxProtocolId],
        }.Encode();
        using var local = LocalStaticKey.CreateForTest(key);
        await DialWithAsync(local, forged);
        await AssertRejectedAndStillServingAsync();
    }

    [Fact]
    public async Task A_responder_with_a_bad_signature_is_rejected_by_the_initiator()
    {
        var key = X25519KeyPair.Generate();
        var payload = NoiseHandshakePayload.Create(_server, key.PublicKey, [Core.Libp2p.Upgrader.YamuxProtocolId]);
        payload.IdentitySignature[0] ^= 1;
        using var local = LocalStaticKey.CreateForTest(key);
        var (dialling, accepted) = await ConnectedPairAsync();
        var responder = HandshakeByHandAsync(accepted, false, local, payload.Encode(), null);
        var e = await Assert.ThrowsAsync<SecureMeshException>(() =>
            new Core.Libp2p.Upgrader(_client).UpgradeOutboundAsync(dialling, _server.PeerId, Timeout()));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.Contains("signature", e.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<SecureMeshException>(() => responder);
    }

    [Fact]
    public async Task A_peer_other_than_the_one_dialled_is_refused()
    {
        using var someoneElse = NodeIdentity.Generate();
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => DialAsync(_client, Transport.LocalEndPoint, someoneElse.PeerId));
        Assert.Equal(SecureMeshErrorKind.Unauthorized, e.Kind);
        Assert.Contains(_server.PeerId.Text, e.Message, StringComparison.Ordinal);
        await AssertRejectedAndStillServingAsync();
    }

    [Fact]
    public Task A_client_sending_one_byte_a_second_is_dropped_at_the_deadline() =>
        // A 64-byte first frame, trickled after choosing /noise.
        AssertTrickleIsDroppedAtTheDeadlineAsync(afterChoosingNoise: true, [0x00, 0x40, 0x00, 0x00]);

    [Fact]
    public Task A_client_trickling_the_multistream_header_is_dropped_at_the_deadline() =>
        // The same before the security protocol is even chosen: the deadline covers the whole upgrade.
        AssertTrickleIsDroppedAtTheDeadlineAsync(afterChoosingNoise: false, "\u0013/mu"u8.ToArray());

    /// <summary>Sends <paramref name="bytes"/> one a second (on the injected clock), then stalls; dropped at the 5 s deadline.</summary>
    private async Task AssertTrickleIsDroppedAtTheDeadlineAsync(bool afterChoosingNoise, byte[] bytes)
    {
        var time = new FakeTimeProvider();
        await using var transport = Listen(_server, TimeSpan.FromSeconds(5), time: time);
        using var raw = afterChoosingNoise ? await ConnectAtNoiseAsync(transport.LocalEndPoint) : await ConnectRawAsync(transport.LocalEndPoint);
        await WaitUntilAsync(() => transport.PendingHandshakes == 1, "the upgrade to start");
        foreach (var b in bytes)
        {
            await raw.SendAsync(new[] { b });
            time.Advance(TimeSpan.FromSeconds(1));
        }
        Assert.False(await WaitForCloseAsync(raw, TimeSpan.FromMilliseconds(200)), "still inside the deadline");
        time.Advance(TimeSpan.FromSeconds(1.5));
        Assert.True(await WaitForCloseAsync(raw, TimeSpan.FromSeconds(5)), "dropped at the deadline");
        await WaitUntilAsync(() => transport.FailedHandshakes == 1 && transport.PendingHandshakes == 0, "the slow client to be counted and released");
        await AssertServesGoodClientAsync(transport, _server);
    }

    [Fact]
    public async Task A_flood_of_half_open_connections_hits_the_caps_and_a_good_client_still_gets_through()
    {
        var time = new FakeTimeProvider();
        await using var transport = Listen(_server, TimeSpan.FromSeconds(5), perAddress: 16, total: 32, time: time);
        var flood = new List<Socket>();
        try
        {
            var maxSeen = 0;
            for (var i = 0; i < 80; i++)
            {
                flood.Add(await ConnectRawAsync(transport.LocalEndPoint));
                maxSeen = Math.Max(maxSeen, transport.PendingHandshakes);
            }
            await WaitUntilAsync(() => transport.RefusedConnections == 80 - 16 && transport.PendingHandshakes == 16, "the connections over the per-address cap to be refused");
            Assert.True(maxSeen <= 16, $"upgrades in progress stayed within the cap (saw {maxSeen})");
            foreach (var refused in flood.Skip(16))
            {
                Assert.True(await WaitForCloseAsync(refused, TimeSpan.FromSeconds(2)), "a refused connection is closed at once");
            }

            // While the flood holds its 16 slots, this address gets nothing more...
            using var good = NodeIdentity.Generate();
            await Assert.ThrowsAsync<SecureMeshException>(() => DialAsync(good, transport.LocalEndPoint, _server.PeerId));

            // ...and once the deadline drops the half-open ones, an honest client gets through.
            time.Advance(TimeSpan.FromSeconds(6));
            await WaitUntilAsync(() => transport.PendingHandshakes == 0 && transport.FailedHandshakes == 16, "the half-open connections to be dropped");
            await AssertServesGoodClientAsync(transport, _server);
        }
        finally
        {
            flood.ForEach(s => s.Dispose());
        }
    }

    [Fact]
    public async Task Stalled_handshakes_from_many_addresses_cannot_lock_out_a_newcomer_for_the_whole_deadline()
    {
        var time = new FakeTimeProvider();
        await using var transport = Listen(_server, TimeSpan.FromSeconds(30), perAddress: 2, total: 8, time: time, evictStalledAfter: TimeSpan.FromSeconds(1));
        var flood = new List<Socket>();
        try
        {
            // Four hosts, two stalled upgrades each: every slot taken while no address is over its own cap.
            for (var host = 2; host <= 5; host++)
            {
                for (var k = 0; k < 2; k++)
                {
                    flood.Add(await ConnectRawAsync(transport.LocalEndPoint, IPAddress.Parse($"127.0.0.{host}")));
                }
            }
            await WaitUntilAsync(() => transport.PendingHandshakes == 8, "every slot to be taken");

            // Fresh upgrades are not evicted: a newcomer is refused while the others are young...
            using var first = await ConnectRawAsync(transport.LocalEndPoint, IPAddress.Parse("127.0.0.6"));
            Assert.True(await WaitForCloseAsync(first, TimeSpan.FromSeconds(3)), "refused while every upgrade is young");
            Assert.Equal(1, transport.RefusedConnections);
            Assert.False(await WaitForCloseAsync(flood[0], TimeSpan.FromMilliseconds(100)), "no stalled upgrade was ended for it");

            // ...but once they have stalled for a while, an honest client gets in long before their 30 s deadline,
            // at the cost of the oldest stalled one (and only that one), and the total stays bounded.
            time.Advance(TimeSpan.FromSeconds(2));
            await AssertServesGoodClientAsync(transport, _server);
            Assert.Equal(1, transport.RefusedConnections);
            Assert.True(await WaitForCloseAsync(flood[0], TimeSpan.FromSeconds(3)), "the oldest stalled upgrade is the one ended");
            foreach (var younger in flood.Skip(1))
            {
                Assert.False(await WaitForCloseAsync(younger, TimeSpan.FromMilliseconds(50)), "the younger stalled upgrades keep their slots");
            }
            Assert.InRange(transport.PendingHandshakes, 0, 8);
        }
        finally
        {
            flood.ForEach(s => s.Dispose());
        }
    }

    [Fact]
    public async Task A_tampered_transport_frame_ends_the_connection_for_good()
    {
        await using var proxy = new FrameProxy(Transport.LocalEndPoint, (c, i, frame) =>
        {
            if (c && i == 3)
            {
                frame[^1] ^= 0x01;
            }
            return frame;
        });
        await using var dialled = await DialAsync(_client, proxy.EndPoint, _server.PeerId);
        await using var accepted = await AcceptAsync(Transport);
        await dialled.Stream.WriteAsync("first"u8.ToArray(), Timeout());
        Assert.Equal("first"u8.ToArray(), await ReadExactlyAsync(accepted.Stream, 5));
        await dialled.Stream.WriteAsync("second"u8.ToArray(), Timeout());
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => ReadExactlyAsync(accepted.Stream, 6));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.Contains("decryption", e.Message, StringComparison.Ordinal);
        Assert.NotNull(accepted.Stream.ClosedReason);
        await Assert.ThrowsAsync<SecureMeshException>(() => ReadExactlyAsync(accepted.Stream, 1));
        await Assert.ThrowsAsync<SecureMeshException>(() => accepted.Stream.WriteAsync(new byte[1], Timeout()).AsTask());
        Assert.True(await EndsWithinAsync(dialled.Stream), "the dialler's connection ends too");
        await AssertServesGoodClientAsync(Transport, _server);
    }

    [Fact]
    public async Task A_replayed_transport_frame_ends_the_connection()
    {
        // The man in the middle records the first transport frame and plays it again in place of the second.
        byte[]? first = null;
        await using var proxy = new FrameProxy(Transport.LocalEndPoint, (c, i, frame) =>
        {
            if (c && i == 2)
            {
                first = (byte[])frame.Clone();
            }
            return c && i == 3 ? first : frame;
        });
        await using var dialled = await DialAsync(_client, proxy.EndPoint, _server.PeerId);
        await using var accepted = await AcceptAsync(Transport);
        await dialled.Stream.WriteAsync("pay alice 10"u8.ToArray(), Timeout());
        Assert.Equal("pay alice 10"u8.ToArray(), await ReadExactlyAsync(accepted.Stream, 12));
        await dialled.Stream.WriteAsync("hello again"u8.ToArray(), Timeout());
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => ReadExactlyAsync(accepted.Stream, 11));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.NotNull(first);
        await Assert.ThrowsAsync<SecureMeshException>(() => ReadExactlyAsync(accepted.Stream, 1));
    }

    /// <summary>Dials the transport with a forged payload; the responder must refuse it, so the secured stream just ends.</summary>
    private async Task DialWithAsync(LocalStaticKey local, byte[] payload)
    {
        var socket = await ConnectRawAsync(Transport.LocalEndPoint);
        await using var secured = await HandshakeByHandAsync(new NetworkStream(socket, true), true, local, payload, _server.PeerId);
        Assert.True(await EndsWithinAsync(secured), "the responder closes the connection");
    }
}
