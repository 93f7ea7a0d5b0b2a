using System.Net.Sockets;
using Microsoft.Extensions.Time.Testing;
using SecureMesh.Core.Channel;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Noise;

namespace SecureMesh.Core.Tests.Channel;

/// <summary>Each attack ends in a closed connection, and the listener then still serves an honest client.</summary>
public sealed class HardeningTests : ListenerTestBase
{
    private async Task AssertRejectedAndStillServingAsync(long failuresBefore = 0)
    {
        await TestNet.WaitUntilAsync(() => _listener.FailedHandshakes > failuresBefore, "the listener to record the failed handshake");
        Assert.False(_listener.Connections.TryRead(out _), "no connection may come out of a failed handshake");
        await TestNet.AssertServesGoodClientAsync(_listener, _server);
    }

    [Theory]
    [InlineData(0)] // -> e
    [InlineData(1)] // <- e, ee, s, es (+ responder payload)
    [InlineData(2)] // -> s, se (+ initiator payload)
    public async Task A_tampered_byte_in_any_handshake_message_closes_the_connection(int message)
    {
        var (fromClient, index) = message switch { 0 => (true, 0), 1 => (false, 0), _ => (true, 1) };
        await using var proxy = new FrameProxy(_listener.LocalEndPoint, (c, i, frame) =>
        {
            if (c == fromClient && i == index)
            {
                frame[frame.Length / 2] ^= 0x40;
            }
            return frame;
        });
        if (message < 2)
        {
            var e = await Assert.ThrowsAsync<SecureMeshException>(() =>
                SecureChannel.DialAsync(_client, proxy.EndPoint, _server.PeerId, SecureChannelOptions.Default, TestNet.Timeout()));
            Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        }
        else
        {
            // The initiator is done after writing message 3; the responder rejects it and closes.
            await using var dialled = await SecureChannel.DialAsync(_client, proxy.EndPoint, _server.PeerId, SecureChannelOptions.Default, TestNet.Timeout());
            await Assert.ThrowsAsync<SecureMeshException>(() => dialled.ReceiveAsync(TestNet.Timeout()).AsTask());
        }
        await AssertRejectedAndStillServingAsync();
    }

    [Fact]
    public async Task A_truncated_frame_closes_the_connection_at_once()
    {
        using var raw = await TestNet.ConnectRawAsync(_listener.LocalEndPoint);
        await raw.SendAsync(new byte[] { 0x00, 0x64, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 });
        raw.Shutdown(SocketShutdown.Send);
        Assert.True(await TestNet.WaitForCloseAsync(raw, TimeSpan.FromSeconds(3)), "closed well before the 5 s deadline");
        await AssertRejectedAndStillServingAsync();
    }

    [Fact]
    public async Task A_length_prefix_larger_than_what_follows_is_dropped_at_the_deadline()
    {
        await using var listener = SecureListener.Start(TestNet.Loopback, _server, TestNet.ListenerOptions(TimeSpan.FromMilliseconds(500)));
        using var raw = await TestNet.ConnectRawAsync(listener.LocalEndPoint);
        await raw.SendAsync(new byte[] { 0xFF, 0xFF }.Concat(new byte[100]).ToArray());
        Assert.True(await TestNet.WaitForCloseAsync(raw, TimeSpan.FromSeconds(5)));
        await TestNet.WaitUntilAsync(() => listener.FailedHandshakes == 1, "the failure to be counted");
        await TestNet.AssertServesGoodClientAsync(listener, _server);
    }

    [Fact]
    public async Task A_zero_length_first_message_closes_the_connection_at_once()
    {
        using var raw = await TestNet.ConnectRawAsync(_listener.LocalEndPoint);
        await raw.SendAsync(new byte[] { 0x00, 0x00 });
        Assert.True(await TestNet.WaitForCloseAsync(raw, TimeSpan.FromSeconds(3)));
        await AssertRejectedAndStillServingAsync();
    }

    [Fact]
    public async Task An_oversized_first_frame_is_rejected()
    {
        using var raw = await TestNet.ConnectRawAsync(_listener.LocalEndPoint);
        var body = new byte[65535];
        Random.Shared.NextBytes(body);
        await raw.SendAsync(TestNet.Frame(body));
        Assert.True(await TestNet.WaitForCloseAsync(raw, TimeSpan.FromSeconds(3)));
        await AssertRejectedAndStillServingAsync();
    }

    [Fact]
    public async Task Garbage_bytes_close_the_connection()
    {
        using var raw = await TestNet.ConnectRawAsync(_listener.LocalEndPoint);
        var garbage = new byte[3000];
        Random.Shared.NextBytes(garbage);
        garbage[0] = 0x00;
        garbage[1] = 0x40; // a 64-byte "first message" followed by noise
        await raw.SendAsync(garbage);
        Assert.True(await TestNet.WaitForCloseAsync(raw, TimeSpan.FromSeconds(3)));
        await AssertRejectedAndStillServingAsync();
    }

    [Fact]
    public async Task An_inner_message_length_over_the_cap_closes_the_connection_before_allocating()
    {
        await using var dialled = await SecureChannel.DialAsync(_client, _listener.LocalEndPoint, _server.PeerId, SecureChannelOptions.Default, TestNet.Timeout());
        await using var accepted = await _listener.AcceptAsync(TestNet.Timeout());
        await dialled.SendRawFrameForTestAsync(new byte[] { 0x7F, 0xFF, 0xFF, 0xFF, 1, 2, 3 }, TestNet.Timeout());
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => accepted.ReceiveAsync(TestNet.Timeout()).AsTask());
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.Contains("cap", e.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<SecureMeshException>(() => accepted.ReceiveAsync(TestNet.Timeout()).AsTask());
        await Assert.ThrowsAsync<SecureMeshException>(() => dialled.ReceiveAsync(TestNet.Timeout()).AsTask());
        await TestNet.AssertServesGoodClientAsync(_listener, _server);
    }

    [Fact]
    public async Task A_third_message_replayed_from_another_session_is_rejected()
    {
        byte[]? recorded = null;
        var session = 0;
        await using var proxy = new FrameProxy(_listener.LocalEndPoint, (c, i, frame) =>
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
        await using (var first = await SecureChannel.DialAsync(_client, proxy.EndPoint, _server.PeerId, SecureChannelOptions.Default, TestNet.Timeout()))
        {
            await using var accepted = await _listener.AcceptAsync(TestNet.Timeout());
            Assert.Equal(_client.PeerId, accepted.RemotePeerId);
        }
        await using var second = await SecureChannel.DialAsync(_client, proxy.EndPoint, _server.PeerId, SecureChannelOptions.Default, TestNet.Timeout());
        await Assert.ThrowsAsync<SecureMeshException>(() => second.ReceiveAsync(TestNet.Timeout()).AsTask());
        Assert.Equal(2, session);
        await AssertRejectedAndStillServingAsync();
    }

    [Fact]
    public async Task A_bad_identity_signature_is_rejected_by_the_responder()
    {
        var key = X25519KeyPair.Generate();
        var payload = NoiseHandshakePayload.Create(_client, key.PublicKey, [SecureChannel.ProtocolId]);
        payload.IdentitySignature[10] ^= 1;
        using var local = LocalStaticKey.CreateForTest(key, payload.Encode());
        await DialWithAsync(local);
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
        };
        using var local = LocalStaticKey.CreateForTest(key, forged.Encode());
        await DialWithAsync(local);
        await AssertRejectedAndStillServingAsync();
    }

    [Fact]
    public async Task A_responder_with_a_bad_signature_is_rejected_by_the_initiator()
    {
        var key = X25519KeyPair.Generate();
        var payload = NoiseHandshakePayload.Create(_server, key.PublicKey, []);
        payload.IdentitySignature[0] ^= 1;
        using var local = LocalStaticKey.CreateForTest(key, payload.Encode());
        var (s1, s2) = await SecureChannelTests.ConnectedPairAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        var responder = SecureChannel.HandshakeAsync(s2, false, _server, local, null, null, SecureChannelOptions.Default, deadline, TestNet.Timeout());
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => SecureChannel.DialAsync(s1, _client, null, SecureChannelOptions.Default, TestNet.Timeout()));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.Contains("signature", e.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<SecureMeshException>(() => responder);
    }

    [Fact]
    public async Task A_peer_other_than_the_one_dialled_is_refused()
    {
        using var someoneElse = NodeIdentity.Generate();
        var e = await Assert.ThrowsAsync<SecureMeshException>(() =>
            SecureChannel.DialAsync(_client, _listener.LocalEndPoint, someoneElse.PeerId, SecureChannelOptions.Default, TestNet.Timeout()));
        Assert.Equal(SecureMeshErrorKind.Unauthorized, e.Kind);
        Assert.Contains(_server.PeerId.Text, e.Message, StringComparison.Ordinal);
        await AssertRejectedAndStillServingAsync();
    }

    [Fact]
    public async Task A_client_sending_one_byte_a_second_is_dropped_at_the_deadline()
    {
        var time = new FakeTimeProvider();
        await using var listener = SecureListener.Start(TestNet.Loopback, _server, TestNet.ListenerOptions(TimeSpan.FromSeconds(5), time: time));
        using var raw = await TestNet.ConnectRawAsync(listener.LocalEndPoint);
        await TestNet.WaitUntilAsync(() => listener.PendingHandshakes == 1, "the handshake to start");
        for (var i = 0; i < 4; i++)
        {
            await raw.SendAsync(new byte[] { (byte)(i == 1 ? 0x40 : 0) }); // a 64-byte first frame, trickled
            time.Advance(TimeSpan.FromSeconds(1));
        }
        Assert.False(await TestNet.WaitForCloseAsync(raw, TimeSpan.FromMilliseconds(200)), "still inside the deadline");
        time.Advance(TimeSpan.FromSeconds(1.5));
        Assert.True(await TestNet.WaitForCloseAsync(raw, TimeSpan.FromSeconds(5)), "dropped at the deadline");
        await TestNet.WaitUntilAsync(() => listener.FailedHandshakes == 1 && listener.PendingHandshakes == 0, "the slow client to be counted and released");
        await TestNet.AssertServesGoodClientAsync(listener, _server);
    }

    [Fact]
    public async Task A_flood_of_half_open_connections_hits_the_caps_and_a_good_client_still_gets_through()
    {
        var time = new FakeTimeProvider();
        await using var listener = SecureListener.Start(TestNet.Loopback, _server, TestNet.ListenerOptions(TimeSpan.FromSeconds(5), perAddress: 16, total: 32, time: time));
        var flood = new List<Socket>();
        try
        {
            var maxSeen = 0;
            for (var i = 0; i < 80; i++)
            {
                flood.Add(await TestNet.ConnectRawAsync(listener.LocalEndPoint));
                maxSeen = Math.Max(maxSeen, listener.PendingHandshakes);
            }
            await TestNet.WaitUntilAsync(() => listener.RefusedConnections == 80 - 16 && listener.PendingHandshakes == 16, "the connections over the per-address cap to be refused");
            Assert.True(maxSeen <= 16, $"pending handshakes stayed within the cap (saw {maxSeen})");
            foreach (var refused in flood.Skip(16))
            {
                Assert.True(await TestNet.WaitForCloseAsync(refused, TimeSpan.FromSeconds(2)), "a refused connection is closed at once");
            }

            // While the flood holds its 16 slots, this address gets nothing more...
            using var good = NodeIdentity.Generate();
            await Assert.ThrowsAsync<SecureMeshException>(() =>
                SecureChannel.DialAsync(good, listener.LocalEndPoint, _server.PeerId, SecureChannelOptions.Default, TestNet.Timeout()));

            // ...and once the deadline drops the half-open ones, an honest client gets through.
            time.Advance(TimeSpan.FromSeconds(6));
            await TestNet.WaitUntilAsync(() => listener.PendingHandshakes == 0 && listener.FailedHandshakes == 16, "the half-open connections to be dropped");
            await TestNet.AssertServesGoodClientAsync(listener, _server);
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
        var options = new SecureListenerOptions
        {
            HandshakeTimeout = TimeSpan.FromSeconds(30),
            MaxPendingHandshakes = 8,
            MaxPendingPerAddress = 2,
            EvictStalledAfter = TimeSpan.FromSeconds(1),
            TimeProvider = time,
        };
        await using var listener = SecureListener.Start(TestNet.Loopback, _server, options);
        var flood = new List<Socket>();
        try
        {
            // Four hosts, two stalled handshakes each: every slot taken while no address is over its own cap.
            for (var host = 2; host <= 5; host++)
            {
                for (var k = 0; k < 2; k++)
                {
                    flood.Add(await TestNet.ConnectRawAsync(listener.LocalEndPoint, System.Net.IPAddress.Parse($"127.0.0.{host}")));
                }
            }
            await TestNet.WaitUntilAsync(() => listener.PendingHandshakes == 8, "every slot to be taken");

            // Fresh handshakes are not evicted: a newcomer is refused while the others are young...
            using var first = await TestNet.ConnectRawAsync(listener.LocalEndPoint, System.Net.IPAddress.Parse("127.0.0.6"));
            Assert.True(await TestNet.WaitForCloseAsync(first, TimeSpan.FromSeconds(3)), "refused while every handshake is young");
            Assert.Equal(0, listener.EvictedHandshakes);

            // ...but once they have stalled for a while, an honest client gets in long before their 30 s deadline,
            // at the cost of the oldest stalled one, and the total stays bounded.
            time.Advance(TimeSpan.FromSeconds(2));
            await TestNet.AssertServesGoodClientAsync(listener, _server);
            Assert.Equal(1, listener.EvictedHandshakes);
            Assert.True(await TestNet.WaitForCloseAsync(flood[0], TimeSpan.FromSeconds(3)), "the oldest stalled handshake is the one ended");
            Assert.InRange(listener.PendingHandshakes, 0, 8);
        }
        finally
        {
            flood.ForEach(s => s.Dispose());
        }
    }

    [Fact]
    public async Task A_tampered_transport_frame_ends_the_connection_for_good()
    {
        await using var proxy = new FrameProxy(_listener.LocalEndPoint, (c, i, frame) =>
        {
            if (c && i == 3)
            {
                frame[^1] ^= 0x01;
            }
            return frame;
        });
        await using var dialled = await SecureChannel.DialAsync(_client, proxy.EndPoint, _server.PeerId, SecureChannelOptions.Default, TestNet.Timeout());
        await using var accepted = await _listener.AcceptAsync(TestNet.Timeout());
        await dialled.SendAsync("first"u8.ToArray(), TestNet.Timeout());
        Assert.Equal("first"u8.ToArray(), await accepted.ReceiveAsync(TestNet.Timeout()));
        await dialled.SendAsync("second"u8.ToArray(), TestNet.Timeout());
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => accepted.ReceiveAsync(TestNet.Timeout()).AsTask());
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.Contains("decryption", e.Message, StringComparison.Ordinal);
        Assert.NotNull(accepted.ClosedReason);
        await Assert.ThrowsAsync<SecureMeshException>(() => accepted.ReceiveAsync(TestNet.Timeout()).AsTask());
        await Assert.ThrowsAsync<SecureMeshException>(() => accepted.SendAsync(new byte[1], TestNet.Timeout()).AsTask());
        await Assert.ThrowsAsync<SecureMeshException>(() => dialled.ReceiveAsync(TestNet.Timeout()).AsTask());
        await TestNet.AssertServesGoodClientAsync(_listener, _server);
    }

    [Fact]
    public async Task A_replayed_transport_frame_ends_the_connection()
    {
        // The man in the middle records the first transport message and plays it again in place of the second.
        byte[]? first = null;
        await using var proxy = new FrameProxy(_listener.LocalEndPoint, (c, i, frame) =>
        {
            if (c && i == 2)
            {
                first = (byte[])frame.Clone();
            }
            return c && i == 3 ? first : frame;
        });
        await using var dialled = await SecureChannel.DialAsync(_client, proxy.EndPoint, _server.PeerId, SecureChannelOptions.Default, TestNet.Timeout());
        await using var accepted = await _listener.AcceptAsync(TestNet.Timeout());
        await dialled.SendAsync("pay alice 10"u8.ToArray(), TestNet.Timeout());
        Assert.Equal("pay alice 10"u8.ToArray(), await accepted.ReceiveAsync(TestNet.Timeout()));
        await dialled.SendAsync("hello again"u8.ToArray(), TestNet.Timeout());
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => accepted.ReceiveAsync(TestNet.Timeout()).AsTask());
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.NotNull(first);
        await Assert.ThrowsAsync<SecureMeshException>(() => accepted.ReceiveAsync(TestNet.Timeout()).AsTask());
    }

    private async Task DialWithAsync(LocalStaticKey local)
    {
        var socket = await TestNet.ConnectRawAsync(_listener.LocalEndPoint);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await using var connection = await SecureChannel.HandshakeAsync(new NetworkStream(socket, true), true, _client, local, _server.PeerId, null, SecureChannelOptions.Default, deadline, TestNet.Timeout());
        await Assert.ThrowsAsync<SecureMeshException>(() => connection.ReceiveAsync(TestNet.Timeout()).AsTask());
    }
}
