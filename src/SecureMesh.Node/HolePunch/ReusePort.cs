using System.Net;
using System.Net.Sockets;

namespace SecureMesh.Node.HolePunch;

/// <summary>
/// SO_REUSEADDR and SO_REUSEPORT, so that a hole-punching dial can leave from the port the node listens on (the port
/// its NAT mapping is known for) while the listener keeps listening there.
/// </summary>
internal static class ReusePort
{
    private const int SolSocketLinux = 1;
    private const int SoReusePortLinux = 15;
    private const int SolSocketBsd = 0xffff;
    private const int SoReusePortBsd = 0x200;

    /// <summary>True where SO_REUSEPORT is set (Linux, macOS); elsewhere hole punching dials from another port.</summary>
    public static bool Supported => OperatingSystem.IsLinux() || OperatingSystem.IsMacOS();

    /// <summary>Sets SO_REUSEADDR and SO_REUSEPORT on an unbound socket (where supported).</summary>
    public static void Enable(Socket socket)
    {
        if (!Supported)
        {
            return;
        }
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        var on = BitConverter.GetBytes(1);
        if (OperatingSystem.IsLinux())
        {
            socket.SetRawSocketOption(SolSocketLinux, SoReusePortLinux, on);
        }
        else
        {
            socket.SetRawSocketOption(SolSocketBsd, SoReusePortBsd, on);
        }
    }

    /// <summary>
    /// Binds a plain probe socket to <paramref name="endPoint"/> (throwing <see cref="SocketException"/> when the port is
    /// taken, as a plain bind would), releases it, and prepares <paramref name="socket"/> to bind the same endpoint with
    /// reuse on. Returns the endpoint to bind (the probe's port when 0 was asked for).
    /// </summary>
    public static IPEndPoint ProbeAndEnable(Socket socket, IPEndPoint endPoint)
    {
        if (!Supported)
        {
            return endPoint;
        }
        IPEndPoint chosen;
        using (var probe = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp))
        {
            probe.Bind(endPoint);
            chosen = (IPEndPoint)probe.LocalEndPoint!;
        }
        Enable(socket);
        return new IPEndPoint(endPoint.Address, chosen.Port);
    }
}
