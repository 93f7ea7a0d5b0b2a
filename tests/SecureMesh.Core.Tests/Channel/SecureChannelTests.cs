using System.Net;
using System.Net.Sockets;
using SecureMesh.Core.Channel;
using SecureMesh.Core.Identity;

namespace SecureMesh.Core.Tests.Channel;

public class SecureChannelTests
{
    [Fact]
    public async Task Dial_and_listen_authenticate_both_peers_and_agree_on_everything()
    {
        using var server = NodeIdentity.Generate();
        using var client = NodeIdentity.Generate();
        await using var listener = SecureListener.Start(TestNet.Loopback, server, TestNet.ListenerOptions());
        await using var dialled = await SecureChannel.DialAsync(client, listener.LocalEndPoint, server.PeerId, SecureChannelOptions.Default, TestNet.Timeout());
        await using var accepted = await listener.AcceptAsync(TestNet.Timeout());

        Assert.Equal(server.PeerId, dialled.RemotePeerId);
        Assert.Equal(client.PeerId, accepted.RemotePeerId);
        Assert.Equal(dialled.HandshakeHash, accepted.HandshakeHash);
        Assert.Equal(32, dialled.HandshakeHash.Length);
        Assert.Equal(ShortAuthString.From(dialled.HandshakeHash), ShortAuthString.From(accepted.HandshakeHash));
        Assert.Equal([SecureChannel.ProtocolId], dialled.RemoteProtocols);
        Assert.Equal([SecureChannel.ProtocolId], accepted.RemoteProtocols);
        Assert.Equal(listener.LocalEndPoint, dialled.RemoteEndPoint);
        Assert.NotNull(accepted.RemoteEndPoint);

        await dialled.SendAsync("hello"u8.ToArray(), TestNet.Timeout());
        Assert.Equal("hello"u8.ToArray(), await accepted.ReceiveAsync(TestNet.Timeout()));
        await accepted.SendAsync(Array.Empty<byte>(), TestNet.Timeout());
        Assert.Empty(await dialled.ReceiveAsync(TestNet.Timeout()));
        Assert.Equal(1, dialled.MessagesSent);
        Assert.Equal(1, accepted.MessagesReceived);
        Assert.True(dialled.BytesSent > 5 && accepted.BytesReceived == dialled.BytesSent);
    }

    [Fact]
    public async Task Handshake_runs_over_plain_streams_in_both_roles()
    {
        using var a = NodeIdentity.Generate();
        using var b = NodeIdentity.Generate();
        var (s1, s2) = await ConnectedPairAsync();
        var dial = SecureChannel.DialAsync(s1, a, b.PeerId, SecureChannelOptions.Default, TestNet.Timeout());
        var accept = SecureChannel.AcceptAsync(s2, b, SecureChannelOptions.Default, TestNet.Timeout());
        await using var initiator = await dial;
        await using var responder = await accept;
        Assert.Equal(b.PeerId, initiator.RemotePeerId);
        Assert.Equal(a.PeerId, responder.RemotePeerId);
        await responder.SendAsync(new byte[] { 1, 2, 3 }, TestNet.Timeout());
        Assert.Equal(new byte[] { 1, 2, 3 }, await initiator.ReceiveAsync(TestNet.Timeout()));
    }

    [Fact]
    public async Task A_five_MiB_message_round_trips()
    {
        await using var pair = await Pair.CreateAsync();
        var big = new byte[5 * 1024 * 1024];
        Random.Shared.NextBytes(big);
        var send = pair.Client.SendAsync(big, TestNet.Timeout()).AsTask();
        var received = await pair.Server.ReceiveAsync(TestNet.Timeout());
        await send;
        Assert.Equal(big, received);
        var echo = pair.Server.SendAsync(received, TestNet.Timeout()).AsTask();
        using var back = await pair.Client.ReceivePooledAsync(TestNet.Timeout());
        await echo;
        Assert.True(back.Memory.Span.SequenceEqual(big));
    }

    [Fact]
    public async Task Many_messages_of_many_sizes_arrive_in_order()
    {
        await using var pair = await Pair.CreateAsync();
        var sizes = Enumerable.Range(0, 2000).Select(i => i % 7 == 0 ? 65519 - 4 + (i % 5) : i % 300).ToArray();
        var sender = Task.Run(async () =>
        {
            foreach (var (size, i) in sizes.Select((s, i) => (s, i)))
            {
                var m = new byte[size];
                m.AsSpan().Fill((byte)i);
                await pair.Client.SendAsync(m, TestNet.Timeout());
            }
        });
        for (var i = 0; i < sizes.Length; i++)
        {
            var m = await pair.Server.ReceiveAsync(TestNet.Timeout());
            Assert.Equal(sizes[i], m.Length);
            Assert.True(m.AsSpan().IndexOfAnyExcept((byte)i) < 0);
        }
        await sender;
    }

    [Fact]
    public async Task Concurrent_senders_never_interleave_messages()
    {
        await using var pair = await Pair.CreateAsync();
        const int Senders = 8, PerSender = 50;
        var tasks = Enumerable.Range(0, Senders).Select(s => Task.Run(async () =>
        {
            for (var i = 0; i < PerSender; i++)
            {
                var m = new byte[1000 + (s * 10000) + i];
                m.AsSpan().Fill((byte)s);
                await pair.Client.SendAsync(m, TestNet.Timeout());
            }
        })).ToArray();
        var counts = new int[Senders];
        for (var i = 0; i < Senders * PerSender; i++)
        {
            var m = await pair.Server.ReceiveAsync(TestNet.Timeout());
            var s = m[0];
            Assert.True(m.AsSpan().IndexOfAnyExcept(s) < 0, "a message was mixed with another");
            Assert.Equal(1000 + (s * 10000) + counts[s], m.Length);
            counts[s]++;
        }
        await Task.WhenAll(tasks);
        Assert.All(counts, c => Assert.Equal(PerSender, c));
    }

    [Fact]
    public async Task Cancelling_a_receive_before_a_message_begins_keeps_the_connection()
    {
        await using var pair = await Pair.CreateAsync();
        using var soon = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pair.Server.ReceiveAsync(soon.Token).AsTask());
        Assert.Null(pair.Server.ClosedReason);
        await pair.Client.SendAsync("still here"u8.ToArray(), TestNet.Timeout());
        Assert.Equal("still here"u8.ToArray(), await pair.Server.ReceiveAsync(TestNet.Timeout()));
    }

    [Fact]
    public async Task After_dispose_send_and_receive_throw_instead_of_hanging()
    {
        var pair = await Pair.CreateAsync();
        await pair.Server.DisposeAsync();
        await Assert.ThrowsAsync<SecureMeshException>(() => pair.Server.ReceiveAsync(TestNet.Timeout()).AsTask());
        await Assert.ThrowsAsync<SecureMeshException>(() => pair.Server.SendAsync(new byte[1], TestNet.Timeout()).AsTask());
        await pair.DisposeAsync();
    }

    [Fact]
    public async Task Reaching_the_nonce_limit_closes_the_connection()
    {
        await using var pair = await Pair.CreateAsync();
        pair.Client.TransportForTest.SendCipher.SetNonceForTest(SecureMesh.Core.Noise.TransportState.NonceLimit);
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => pair.Client.SendAsync(new byte[1], TestNet.Timeout()).AsTask());
        Assert.Contains("nonce", e.Message, StringComparison.Ordinal);
        Assert.NotNull(pair.Client.ClosedReason);
    }

    [Fact]
    public async Task A_message_over_the_cap_is_refused_before_sending()
    {
        await using var pair = await Pair.CreateAsync(new SecureChannelOptions { MaxMessageSize = 1000 });
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => pair.Client.SendAsync(new byte[1001], TestNet.Timeout()).AsTask());
        Assert.Equal(SecureMeshErrorKind.InvalidInput, e.Kind);
        await pair.Client.SendAsync(new byte[1000], TestNet.Timeout());
        Assert.Equal(1000, (await pair.Server.ReceiveAsync(TestNet.Timeout())).Length);
    }

    [Fact]
    public async Task A_clean_close_by_the_peer_ends_receive_with_a_network_error()
    {
        var pair = await Pair.CreateAsync();
        await pair.Client.DisposeAsync();
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => pair.Server.ReceiveAsync(TestNet.Timeout()).AsTask());
        Assert.Equal(SecureMeshErrorKind.Network, e.Kind);
        await pair.DisposeAsync();
    }

    [Fact]
    public async Task Dialing_a_closed_port_is_a_network_error()
    {
        using var me = NodeIdentity.Generate();
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var endPoint = (IPEndPoint)probe.LocalEndpoint;
        probe.Stop();
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => SecureChannel.DialAsync(me, endPoint, null, SecureChannelOptions.Default, TestNet.Timeout()));
        Assert.Equal(SecureMeshErrorKind.Network, e.Kind);
    }

    internal static async Task<(Stream, Stream)> ConnectedPairAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(TestNet.Loopback);
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var connect = client.ConnectAsync(listener.LocalEndPoint!);
        var server = await listener.AcceptAsync();
        await connect;
        return (new NetworkStream(client, true), new NetworkStream(server, true));
    }

    internal sealed class Pair : IAsyncDisposable
    {
        private readonly NodeIdentity _a;
        private readonly NodeIdentity _b;

        private Pair(NodeIdentity a, NodeIdentity b, SecureConnection client, SecureConnection server)
        {
            _a = a;
            _b = b;
            Client = client;
            Server = server;
        }

        public SecureConnection Client { get; }

        public SecureConnection Server { get; }

        public static async Task<Pair> CreateAsync(SecureChannelOptions? options = null)
        {
            options ??= SecureChannelOptions.Default;
            var a = NodeIdentity.Generate();
            var b = NodeIdentity.Generate();
            var (s1, s2) = await ConnectedPairAsync();
            var dial = SecureChannel.DialAsync(s1, a, b.PeerId, options, TestNet.Timeout());
            var accept = SecureChannel.AcceptAsync(s2, b, options, TestNet.Timeout());
            return new Pair(a, b, await dial, await accept);
        }

        public async ValueTask DisposeAsync()
        {
            await Client.DisposeAsync();
            await Server.DisposeAsync();
            _a.Dispose();
            _b.Dispose();
        }
    }
}
