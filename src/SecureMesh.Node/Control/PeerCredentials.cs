using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace SecureMesh.Node.Control;

/// <summary>Who is on the other end of a Unix domain socket, from the kernel (<c>SO_PEERCRED</c>), not from anything the client says.</summary>
internal static partial class PeerCredentials
{
    private const int SolSocket = 1;
    private const int SoPeerCred = 17;

    /// <summary>Reads <c>struct ucred { pid_t pid; uid_t uid; gid_t gid; }</c>; false when the kernel does not say.</summary>
    public static bool TryGet(Socket socket, out int pid, out uint uid)
    {
        ArgumentNullException.ThrowIfNull(socket);
        Span<byte> ucred = stackalloc byte[12];
        pid = 0;
        uid = uint.MaxValue;
        try
        {
            if (socket.GetRawSocketOption(SolSocket, SoPeerCred, ucred) < ucred.Length)
            {
                return false;
            }
        }
        catch (SocketException)
        {
            return false;
        }
        pid = MemoryMarshal.Read<int>(ucred);
        uid = MemoryMarshal.Read<uint>(ucred[4..]);
        return true;
    }

    /// <summary>This process's effective uid: the only one the control socket serves.</summary>
    public static uint EffectiveUid() => GetEuid();

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEuid();
}
