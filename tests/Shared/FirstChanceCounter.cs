using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;

namespace SecureMesh.Tests.Shared;

/// <summary>
/// Records the first-chance exceptions (every exception thrown, caught or not, once however many async methods it passes
/// up through) of the code started from the test that created it:
/// the count travels with the test's execution context into the tasks and loops it starts (an <see cref="AsyncLocal{T}"/>),
/// so exceptions of other tests running at the same time are not counted. A normal connection's life should throw none:
/// each costs tens of microseconds.
/// </summary>
internal sealed class FirstChanceCounter : IDisposable
{
    private static readonly AsyncLocal<FirstChanceCounter?> Current = new();
    private readonly ConcurrentQueue<string> _seen = new();
    private readonly HashSet<Exception> _distinct = new(ReferenceEqualityComparer.Instance);
    private volatile bool _counting;

    /// <summary>Marks the calling flow (create it before starting what is to be watched); counting starts with <see cref="Start"/>.</summary>
    public FirstChanceCounter()
    {
        Current.Value = this;
        AppDomain.CurrentDomain.FirstChanceException += OnFirstChance;
    }

    /// <summary>What was thrown while counting: type, message and the throwing method.</summary>
    public IReadOnlyCollection<string> Seen => _seen;

    public void Start() => _counting = true;

    public void Stop() => _counting = false;

    public void Dispose()
    {
        _counting = false;
        AppDomain.CurrentDomain.FirstChanceException -= OnFirstChance;
        Current.Value = null;
    }

    private void OnFirstChance(object? sender, FirstChanceExceptionEventArgs e)
    {
        if (_counting && ReferenceEquals(Current.Value, this))
        {
            // An exception that passes up through several async methods is raised again at each await: counted once.
            lock (_distinct)
            {
                if (!_distinct.Add(e.Exception))
                {
                    return;
                }
            }
            // SECUREMESH_TEST_EXCEPTION_STACKS=1 adds where each was thrown, to find a rare one.
            var stack = Environment.GetEnvironmentVariable("SECUREMESH_TEST_EXCEPTION_STACKS") == "1" ? "\n" + Environment.StackTrace : "";
            _seen.Enqueue($"{e.Exception.GetType().Name} in {e.Exception.TargetSite?.DeclaringType?.Name}.{e.Exception.TargetSite?.Name}: {e.Exception.Message}{stack}");
        }
    }
}
