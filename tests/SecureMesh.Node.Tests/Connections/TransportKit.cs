using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using SecureMesh.Core;
using SecureMesh.Core.Channel;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p;
using SecureMesh.Core.Libp2p.Multistream;
using SecureMesh.Core.Libp2p.Yamux;
using SecureMesh.Core.Wire;
using SecureMesh.Node.Network;

namespace SecureMesh.Node.Tests.Connections;

/// <summary>
/// The production connection stack on 127.0.0.1 for attack tests: a <see cref="TcpTransport"/> whose connections the
/// <see cref="Upgrader"/> takes through multistream-select, Noise and the muxer choice, and raw sockets to attack it with.
/// </summary>
internal static class TransportKit
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    public static IPEndPoint Loopback => new(IPAddress.Loopback, 0);

    public static CancellationToken Timeout(double seconds = 10) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    /// <summary>A listening transport for <paramref name="server"/>; the upgrader and the transport share the deadline, clock, logger and log throttle, as in the node.</summary>
    public static TcpTransport Listen(NodeIdentity server, TimeSpan? deadline = null, int perAddress = 16, int total = 256, TimeProvider? time = null,
        ILogger? logger = null, LogThrottle? failureLog = null, Func<IPAddress, bool>? addressFilter = null, TimeSpan? evictStalledAfter = null)
    {
        time ??= TimeProvider.System;
        failureLog ??= new LogThrottle(time);
        var timeout = deadline ?? TimeSpan.FromSeconds(5);
        var upgrader = new Upgrader(server, new UpgraderOptions { HandshakeTimeout = timeout, TimeProvider = time, Logger = logger, FailureLog = failureLog });
        return TcpTransport.Listen(Loopback, upgrader, new TcpTransportOptions
        {
            HandshakeTimeout = timeout,
            MaxPendingPerAddress = perAddress,
            MaxPendingHandshakes = total,
            EvictStalledAfter = evictStalledAfter ?? TimeSpan.FromSeconds(1),
            AddressFilter = addressFilter,
            Time = time,
            Logger = logger,
            FailureLog = failureLog,
        });
    }

    /// <summary>Dials and upgrades as <paramref name="client"/>, as the node does.</summary>
    public static Task<UpgradedConnection> DialAsync(NodeIdentity client, IPEndPoint endPoint, PeerId? expected, double seconds = 10) =>
        TcpTransport.DialAsync(new Upgrader(client, new UpgraderOptions { HandshakeTimeout = TimeSpan.FromSeconds(seconds) }), endPoint, expected,
            TimeSpan.FromSeconds(seconds), TimeProvider.System, Timeout(seconds + 5));

    /// <summary>The next authenticated connection out of <paramref name="transport"/>.</summary>
    public static async Task<UpgradedConnection> AcceptAsync(TcpTransport transport) => (await transport.Connections.ReadAsync(Timeout())).Connection;

    /// <summary>Proves the transport still completes a good upgrade and carries bytes both ways on the secured stream.</summary>
    public static async Task AssertServesGoodClientAsync(TcpTransport transport, NodeIdentity server)
    {
        using var client = NodeIdentity.Generate();
        await using var dialled = await DialAsync(client, transport.LocalEndPoint, server.PeerId);
        await using var accepted = await AcceptAsync(transport);
        Assert.Equal(client.PeerId, accepted.RemotePeerId);
        Assert.Equal(server.PeerId, dialled.RemotePeerId);
        await dialled.Stream.WriteAsync("ping"u8.ToArray(), Timeout());
        Assert.Equal("ping"u8.ToArray(), await ReadExactlyAsync(accepted.Stream, 4));
        await accepted.Stream.WriteAsync("pong"u8.ToArray(), Timeout());
        Assert.Equal("pong"u8.ToArray(), await ReadExactlyAsync(dialled.Stream, 4));
    }

    public static async Task<byte[]> ReadExactlyAsync(Stream stream, int count)
    {
        var buffer = new byte[count];
        await stream.ReadExactlyAsync(buffer, Timeout());
        return buffer;
    }

    /// <summary>True when reading <paramref name="stream"/> ends (end of stream, or the connection broke) within the limit.</summary>
    public static async Task<bool> EndsWithinAsync(Stream stream, TimeSpan? limit = null)
    {
        var buffer = new byte[4096];
        using var cts = new CancellationTokenSource(limit ?? Patience);
        try
        {
            while (await stream.ReadAsync(buffer, cts.Token) > 0)
            {
            }
            return true;
        }
        catch (Exception e) when (e is SecureMeshException or IOException or ObjectDisposedException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>True when the next receive finds the message stream ended (closed or reset by the peer).</summary>
    public static async Task<bool> EndsAsync(MessageStream stream)
    {
        try
        {
            using var message = await stream.ReceiveAsync(Timeout());
            return message is null;
        }
        catch (SecureMeshException)
        {
            return true;
        }
    }

    /// <summary>A raw TCP client to the transport, for speaking garbage.</summary>
    public static async Task<Socket> ConnectRawAsync(IPEndPoint endPoint, IPAddress? from = null)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        if (from is not null)
        {
            // Any 127.x.y.z is a local address on Linux: one machine can play many remote hosts.
            socket.Bind(new IPEndPoint(from, 0));
        }
        await socket.ConnectAsync(endPoint, Timeout());
        return socket;
    }

    /// <summary>A raw TCP client that has chosen <c>/noise</c> by multistream-select: what it sends next is read as the handshake.</summary>
    public static async Task<Socket> ConnectAtNoiseAsync(IPEndPoint endPoint)
    {
        var socket = await ConnectRawAsync(endPoint);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        Assert.Equal(Upgrader.NoiseProtocolId, await MultistreamSelect.SelectAsync(stream, [Upgrader.NoiseProtocolId], Timeout()));
        return socket;
    }

    /// <summary>True when the other side closed the socket (read returns 0 or resets) within the limit.</summary>
    public static async Task<bool> WaitForCloseAsync(Socket socket, TimeSpan limit)
    {
        var buffer = new byte[65536];
        using var cts = new CancellationTokenSource(limit);
        try
        {
            while (true)
            {
                if (await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token) == 0)
                {
                    return true;
                }
            }
        }
        catch (SocketException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var until = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (DateTime.UtcNow > until)
            {
                Assert.Fail("timed out waiting for: " + what);
            }
            await Task.Delay(10);
        }
    }

    /// <summary>A Noise frame: the 2-byte big-endian length, then the body.</summary>
    public static byte[] Frame(ReadOnlySpan<byte> body)
    {
        var frame = new byte[2 + body.Length];
        BinaryPrimitives.WriteUInt16BigEndian(frame, (ushort)body.Length);
        body.CopyTo(frame.AsSpan(2));
        return frame;
    }

    /// <summary>
    /// The dialling side of an upgrade driven by hand: <c>/noise</c> by multistream-select, then the Noise handshake with
    /// <paramref name="local"/>'s static key sending <paramref name="payload"/> (e.g. a forged one). Returns the secured stream.
    /// </summary>
    public static async Task<NoiseStream> HandshakeByHandAsync(Stream stream, bool initiator, LocalStaticKey local, byte[] payload, PeerId? expected)
    {
        if (initiator)
        {
            Assert.Equal(Upgrader.NoiseProtocolId, await MultistreamSelect.SelectAsync(stream, [Upgrader.NoiseProtocolId], Timeout()));
        }
        else
        {
            await MultistreamSelect.NegotiateAsync(stream, [Upgrader.NoiseProtocolId], Timeout());
        }
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        var handshake = await NoiseHandshake.RunHandshakeAsync(stream, initiator, local, payload, expected, null, null, new LogThrottle(), deadline, Timeout());
        return new NoiseStream(stream, handshake);
    }

    /// <summary>Two connected loopback sockets as streams (the dialling end first).</summary>
    public static async Task<(NetworkStream Dialling, NetworkStream Accepted)> ConnectedPairAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(Loopback);
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var connect = client.ConnectAsync(listener.LocalEndPoint!);
        var server = await listener.AcceptAsync();
        await connect;
        return (new NetworkStream(client, true), new NetworkStream(server, true));
    }
}

/// <summary>
/// A man in the middle on 127.0.0.1 that passes the multistream-select choice of <c>/noise</c> through (two messages each
/// way), then understands the 2-byte Noise framing and lets a test rewrite, replace or drop any frame in either direction
/// (frames are counted per direction, from 0: the handshake messages first, then the transport frames).
/// </summary>
internal sealed class FrameProxy : IAsyncDisposable
{
    private const int MultistreamMessages = 2;

    private readonly Socket _listen;
    private readonly IPEndPoint _target;
    private readonly Func<bool, int, byte[], byte[]?> _transform;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly List<Socket> _sockets = [];

    /// <param name="transform">(fromClient, index, frame) → frame to forward, or null to cut the connection.</param>
    public FrameProxy(IPEndPoint target, Func<bool, int, byte[], byte[]?> transform)
    {
        _target = target;
        _transform = transform;
        _listen = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listen.Bind(TransportKit.Loopback);
        _listen.Listen(16);
        EndPoint = (IPEndPoint)_listen.LocalEndPoint!;
        _loop = Task.Run(LoopAsync);
    }

    public IPEndPoint EndPoint { get; }

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listen.AcceptAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }
            var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await server.ConnectAsync(_target);
            lock (_sockets)
            {
                _sockets.Add(client);
                _sockets.Add(server);
            }
            _ = PumpAsync(client, server, true);
            _ = PumpAsync(server, client, false);
        }
    }

    private async Task PumpAsync(Socket from, Socket to, bool fromClient)
    {
        var index = 0;
        try
        {
            for (var i = 0; i < MultistreamMessages; i++)
            {
                await to.SendAsync(await ReadMultistreamMessageAsync(from), SocketFlags.None, _stop.Token);
            }
            var header = new byte[2];
            while (true)
            {
                await ReadExactAsync(from, header);
                var body = new byte[BinaryPrimitives.ReadUInt16BigEndian(header)];
                await ReadExactAsync(from, body);
                var output = _transform(fromClient, index++, body);
                if (output is null)
                {
                    break;
                }
                await to.SendAsync(TransportKit.Frame(output), SocketFlags.None, _stop.Token);
            }
        }
        catch (Exception)
        {
            // Either side went away.
        }
        from.Dispose();
        to.Dispose();
    }

    /// <summary>One varint-length-prefixed multistream-select message, prefix included.</summary>
    private async Task<byte[]> ReadMultistreamMessageAsync(Socket socket)
    {
        var message = new List<byte>();
        var one = new byte[1];
        int length = 0, shift = 0;
        do
        {
            await ReadExactAsync(socket, one);
            message.Add(one[0]);
            length |= (one[0] & 0x7F) << shift;
            shift += 7;
        }
        while ((one[0] & 0x80) != 0 && shift < 21);
        var body = new byte[length];
        await ReadExactAsync(socket, body);
        return [.. message, .. body];
    }

    private async Task ReadExactAsync(Socket socket, byte[] buffer)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, _stop.Token);
            if (n == 0)
            {
                throw new EndOfStreamException();
            }
            read += n;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listen.Dispose();
        lock (_sockets)
        {
            foreach (var s in _sockets)
            {
                s.Dispose();
            }
        }
        await _loop;
        _stop.Dispose();
    }
}

/// <summary>A server identity with a listening transport on loopback (5 s upgrade deadline) and a client identity, fresh for each test.</summary>
public abstract class TransportTestBase : IAsyncLifetime
{
    protected readonly NodeIdentity _server = NodeIdentity.Generate();
    protected readonly NodeIdentity _client = NodeIdentity.Generate();
    private TcpTransport? _transport;

    internal TcpTransport Transport => _transport!;

    public Task InitializeAsync()
    {
        _transport = TransportKit.Listen(_server, TimeSpan.FromSeconds(5));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await Transport.DisposeAsync();
        _server.Dispose();
        _client.Dispose();
    }
}

/// <summary>A connection through the transport with yamux started on both ends, for whole messages on streams (<see cref="MessageStream"/>).</summary>
internal sealed class MuxedPair : IAsyncDisposable
{
    private MuxedPair(UpgradedConnection dialled, UpgradedConnection accepted)
    {
        Dialled = dialled;
        Accepted = accepted;
        Client = new YamuxSession(dialled.Stream, isClient: true);
        Server = new YamuxSession(accepted.Stream, isClient: false);
    }

    public UpgradedConnection Dialled { get; }

    public UpgradedConnection Accepted { get; }

    public YamuxSession Client { get; }

    public YamuxSession Server { get; }

    public static async Task<MuxedPair> OpenAsync(NodeIdentity client, TcpTransport transport, NodeIdentity server)
    {
        var dialled = await TransportKit.DialAsync(client, transport.LocalEndPoint, server.PeerId);
        return new MuxedPair(dialled, await TransportKit.AcceptAsync(transport));
    }

    /// <summary>A stream the dialler opens and the listener accepts, as messages on both ends.</summary>
    public async Task<(MessageStream Dialled, MessageStream Accepted)> OpenMessageStreamsAsync(int maxMessageSize = WireLimits.DefaultMaxMessageSize)
    {
        var opened = await Client.OpenStreamAsync(TransportKit.Timeout());
        var dialled = new MessageStream(opened, maxMessageSize);
        // The SYN goes out with the first frame: say hello so the listener sees the stream.
        await dialled.SendAsync("open"u8.ToArray(), TransportKit.Timeout());
        var accepted = new MessageStream(await Server.AcceptStreamAsync(TransportKit.Timeout()), maxMessageSize);
        using (var hello = await accepted.ReceiveAsync(TransportKit.Timeout()))
        {
            Assert.Equal("open"u8.ToArray(), hello!.Memory.ToArray());
        }
        return (dialled, accepted);
    }

    /// <summary>A fresh stream on the same connection still carries a message both ways.</summary>
    public async Task AssertNewStreamWorksAsync()
    {
        var (dialled, accepted) = await OpenMessageStreamsAsync();
        await using (dialled)
        await using (accepted)
        {
            await accepted.SendAsync("still here"u8.ToArray(), TransportKit.Timeout());
            using var back = await dialled.ReceiveAsync(TransportKit.Timeout());
            Assert.Equal("still here"u8.ToArray(), back!.Memory.ToArray());
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync();
        await Server.DisposeAsync();
        await Dialled.DisposeAsync();
        await Accepted.DisposeAsync();
    }
}
