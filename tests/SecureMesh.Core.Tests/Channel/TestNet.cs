using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using SecureMesh.Core.Channel;
using SecureMesh.Core.Identity;

namespace SecureMesh.Core.Tests.Channel;

internal static class TestNet
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    public static IPEndPoint Loopback => new(IPAddress.Loopback, 0);

    public static CancellationToken Timeout(double seconds = 10) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    public static SecureListenerOptions ListenerOptions(TimeSpan? deadline = null, int perAddress = 16, int total = 256, TimeProvider? time = null) => new()
    {
        HandshakeTimeout = deadline ?? TimeSpan.FromSeconds(5),
        MaxPendingPerAddress = perAddress,
        MaxPendingHandshakes = total,
        TimeProvider = time ?? TimeProvider.System,
    };

    /// <summary>A raw TCP client to the listener, for speaking garbage.</summary>
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

    /// <summary>True when the server closed the socket (read returns 0 or resets) within the time limit.</summary>
    public static async Task<bool> WaitForCloseAsync(Socket socket, TimeSpan limit)
    {
        var buffer = new byte[65536];
        using var cts = new CancellationTokenSource(limit);
        try
        {
            while (true)
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                if (n == 0)
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

    /// <summary>Proves the listener still completes a good handshake and carries a message both ways.</summary>
    public static async Task AssertServesGoodClientAsync(SecureListener listener, NodeIdentity server)
    {
        using var client = NodeIdentity.Generate();
        await using var dialled = await SecureChannel.DialAsync(client, listener.LocalEndPoint, server.PeerId, SecureChannelOptions.Default, Timeout());
        await using var accepted = await listener.AcceptAsync(Timeout());
        Assert.Equal(client.PeerId, accepted.RemotePeerId);
        await dialled.SendAsync("ping"u8.ToArray(), Timeout());
        Assert.Equal("ping"u8.ToArray(), await accepted.ReceiveAsync(Timeout()));
        await accepted.SendAsync("pong"u8.ToArray(), Timeout());
        Assert.Equal("pong"u8.ToArray(), await dialled.ReceiveAsync(Timeout()));
    }

    public static byte[] Frame(ReadOnlySpan<byte> body)
    {
        var frame = new byte[2 + body.Length];
        BinaryPrimitives.WriteUInt16BigEndian(frame, (ushort)body.Length);
        body.CopyTo(frame.AsSpan(2));
        return frame;
    }
}

/// <summary>
/// A man in the middle on 127.0.0.1 that understands the 2-byte framing and lets a test rewrite, replace or drop
/// any frame in either direction (frames are counted per direction, from 0).
/// </summary>
internal sealed class FrameProxy : IAsyncDisposable
{
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
        _listen.Bind(TestNet.Loopback);
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
                await to.SendAsync(TestNet.Frame(output), SocketFlags.None, _stop.Token);
            }
        }
        catch (Exception)
        {
            // Either side went away.
        }
        from.Dispose();
        to.Dispose();
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
