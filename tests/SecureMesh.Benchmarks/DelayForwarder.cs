using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace SecureMesh.Benchmarks;

/// <summary>
/// <c>delay-forwarder LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS QUEUE_MB</c>: a TCP forwarder that holds every byte
/// for DELAY_MS before passing it on, in both directions, so two hosts a few microseconds apart see a long path (30 ms
/// each way is a 60 ms round trip). For a kernel without <c>sch_netem</c> (see scripts/yamux-netem.sh). Each direction
/// of each connection queues at most QUEUE_MB (sized for the bandwidth-delay product, e.g. 1 Gbit/s x 30 ms = 3.75 MB):
/// when it is full the forwarder stops reading, so the sender is back-pressured by TCP as a full router queue would
/// (without the loss). Runs until killed; prints LISTENING once ready.
/// </summary>
internal static class DelayForwarder
{
    private const int ReadSize = 64 * 1024;

    public static async Task RunAsync(int listenPort, string targetHost, int targetPort, int delayMs, int queueMb)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Any, listenPort));
        listener.Listen(16);
        Console.WriteLine("LISTENING " + listenPort.ToString(CultureInfo.InvariantCulture));
        var delay = TimeSpan.FromMilliseconds(delayMs);
        var queueBytes = (long)queueMb * 1024 * 1024;
        while (true)
        {
            var inbound = await listener.AcceptAsync();
            _ = Task.Run(async () =>
            {
                using var a = inbound;
                using var b = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                try
                {
                    await b.ConnectAsync(targetHost, targetPort);
                    a.NoDelay = b.NoDelay = true;
                    await Task.WhenAll(PumpAsync(a, b, delay, queueBytes), PumpAsync(b, a, delay, queueBytes));
                }
                catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
                {
                }
            });
        }
    }

    /// <summary>Copies <paramref name="from"/> to <paramref name="to"/>, each chunk sent <paramref name="delay"/> after it arrived.</summary>
    private static async Task PumpAsync(Socket from, Socket to, TimeSpan delay, long queueBytes)
    {
        var queue = new Queue<(long Due, byte[] Data, int Length)>();
        var queued = 0L;
        var gate = new object();
        var dataReady = new SemaphoreSlim(0);
        var roomFreed = new SemaphoreSlim(0);
        var ended = false;
        var stop = false;
        var reader = Task.Run(async () =>
        {
            try
            {
                while (!Volatile.Read(ref stop))
                {
                    while (Interlocked.Read(ref queued) >= queueBytes && !Volatile.Read(ref stop))
                    {
                        await roomFreed.WaitAsync();
                    }
                    var buffer = ArrayPool<byte>.Shared.Rent(ReadSize);
                    var n = await from.ReceiveAsync(buffer.AsMemory(0, ReadSize), SocketFlags.None);
                    if (n == 0)
                    {
                        ArrayPool<byte>.Shared.Return(buffer);
                        break;
                    }
                    lock (gate)
                    {
                        queue.Enqueue((Stopwatch.GetTimestamp() + (long)(delay.TotalSeconds * Stopwatch.Frequency), buffer, n));
                    }
                    Interlocked.Add(ref queued, n);
                    dataReady.Release();
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
            lock (gate)
            {
                ended = true;
            }
            dataReady.Release();
        });
        while (true)
        {
            await dataReady.WaitAsync();
            (long Due, byte[] Data, int Length) item;
            lock (gate)
            {
                if (queue.Count == 0)
                {
                    if (ended)
                    {
                        break;
                    }
                    continue;
                }
                item = queue.Dequeue();
            }
            var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), item.Due);
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait);
            }
            try
            {
                await to.SendAsync(item.Data.AsMemory(0, item.Length), SocketFlags.None);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // The far side is gone: stop reading this direction too.
                Volatile.Write(ref stop, true);
                roomFreed.Release();
                from.Close();
                break;
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(item.Data);
            }
            Interlocked.Add(ref queued, -item.Length);
            roomFreed.Release();
        }
        try
        {
            to.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
        await reader;
    }
}
