/**
 * The dashboard's pages. Each page is its own chunk, so the first page loads only what it shows (the
 * terminal and the markdown renderer are loaded inside their pages, on use). Every page but sign-in needs
 * a session token; without one the router goes to /sign-in and back afterwards.
 */
import type { Pinia } from 'pinia';
import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router';
import { useAuth } from './stores/auth.js';

const routes: RouteRecordRaw[] = [
  {
    path: '/sign-in',
    name: 'sign-in',
    component: () => import('./pages/SignInPage.vue'),
    meta: { public: true, title: 'Sign in' },
  },
  {
    path: '/',
    name: 'workspaces',
    component: () => import('./pages/WorkspacesPage.vue'),
    meta: { title: 'Workspaces' },
  },
  {
    path: '/workspaces/:id',
    name: 'workspace',
    component: () => import('./pages/WorkspacePage.vue'),
    meta: { title: 'Workspace' },
  },
  {
    path: '/workspaces/:id/sessions/:sid',
    name: 'session',
    component: () => import('./pages/SessionPage.vue'),
    meta: { title: 'Session' },
  },
  { path: '/vm', name: 'vm', component: () => import('./pages/VmPage.vue'), meta: { title: 'Your VM' } },
  {
    path: '/usage',
    name: 'usage',
    alias: '/billing',
    component: () => import('./pages/UsagePage.vue'),
    meta: { title: 'Usage' },
  },
  {
    path: '/keys',
    name: 'keys',
    component: () => import('./pages/KeysPage.vue'),
    meta: { title: 'API keys' },
  },
  {
    path: '/audit',
    name: 'audit',
    component: () => import('./pages/AuditPage.vue'),
    meta: { title: 'Audit log' },
  },
  {
    path: '/:pathMatch(.*)*',
    name: 'not-found',
    component: () => import('./pages/NotFoundPage.vue'),
    meta: { public: true, title: 'Page not found' },
  },
];

export function createAppRouter(pinia: Pinia) {
  const router = createRouter({
    history: createWebHistory(),
    routes,
    scrollBehavior: () => ({ top: 0 }),
  });
  router.beforeEach(async (to) => {
    const auth = useAuth(pinia);
    if (!auth.config) {
      try {
        await auth.loadConfig();
      } catch {
        // The sign-in page says the server is unreachable.
      }
    }
    if (to.meta.public) return true;
    if (!auth.signedIn) return { name: 'sign-in', query: to.fullPath !== '/' ? { next: to.fullPath } : {} };
    return true;
  });
  router.afterEach((to) => {
    const title = typeof to.meta.title === 'string' ? to.meta.title : '';
    document.title = title ? `${title} · Factory Factory Cloud` : 'Factory Factory Cloud';
  });
  return router;
}
